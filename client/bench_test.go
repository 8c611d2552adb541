package client

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// BenchmarkPublishAcked measures one acked publish at a time (round trip
// to the broker and back).
func BenchmarkPublishAcked(b *testing.B) {
	c, ctx := benchClient(b)
	payload := make([]byte, 64)
	for b.Loop() {
		if err := c.Publish(ctx, "default", "demo", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishAckedParallel measures pipelined acked publishes from
// many goroutines.
func BenchmarkPublishAckedParallel(b *testing.B) { benchPublishParallel(b, 1) }

// BenchmarkPublishAckedConc32 is the same with 32 publishing goroutines on
// the client's one publish lane (their frames are coalesced).
func BenchmarkPublishAckedConc32(b *testing.B) {
	benchPublishParallel(b, max(1, 32/runtime.GOMAXPROCS(0)))
}

func benchPublishParallel(b *testing.B, parallelism int) {
	c, ctx := benchClient(b)
	payload := make([]byte, 64)
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Publish(ctx, "default", "demo", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPublishSubscribeLatency measures publish (unacked) to delivery
// through the broker, one event at a time.
func BenchmarkPublishSubscribeLatency(b *testing.B) {
	c, ctx := benchClient(b)
	sub, err := c.Subscribe(ctx, "default", "demo")
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	payload := make([]byte, 64)
	for b.Loop() {
		if err := c.Publish(ctx, "default", "demo", payload, WithAck(wire.AckNone)); err != nil {
			b.Fatal(err)
		}
		if _, err := sub.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClient(b *testing.B) (*Client, context.Context) {
	b.Helper()
	tb := startBroker(b)
	opts := Options{TLS: tb.ClientTLS}
	c, err := Dial(context.Background(), tb.Addr, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c, context.Background()
}

// BenchmarkCacheGetParallel measures pipelined cache GETs of 256-byte
// values from many goroutines over the default pool (binary frames).
func BenchmarkCacheGetParallel(b *testing.B) { benchCacheGetParallel(b, false) }

// BenchmarkCacheGetParallelJSON is BenchmarkCacheGetParallel in JSON.
func BenchmarkCacheGetParallelJSON(b *testing.B) { benchCacheGetParallel(b, true) }

func benchCacheGetParallel(b *testing.B, jsonCache bool) {
	tb := startBroker(b, testbroker.WithCaches(cache.Config{}, "default/default/bench"))
	c, err := Dial(context.Background(), tb.Addr, Options{TLS: tb.ClientTLS, CacheConns: 1, CacheStreamsPerConn: 2, JSONCache: jsonCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	kv := c.Cache("default", "bench")
	for i := range 1000 {
		if _, err := kv.Put(ctx, strconv.Itoa(i), make([]byte, 256)); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(16) // 32 goroutines on 2 CPUs, as the c32 comparison
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := kv.Get(ctx, strconv.Itoa(int(n.Add(1)%1000))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
