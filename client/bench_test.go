package client

import (
	"context"
	"testing"

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
func BenchmarkPublishAckedParallel(b *testing.B) {
	c, ctx := benchClient(b)
	payload := make([]byte, 64)
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
