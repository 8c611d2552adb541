package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// startStalledBroker accepts connections, answers each stream's auth with
// auth_ok (granting binary cache frames) and then never reads again, with
// small flow-control windows: the client's writes stall once a window is
// full. It stops when the test ends.
func startStalledBroker(t *testing.T) string {
	t.Helper()
	tlsConf, err := transport.ServerTLSConfig(transport.TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := transport.Listen("127.0.0.1:0", tlsConf, transport.Options{
		InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10,
		InitialConnectionReceiveWindow: 256 << 10, MaxConnectionReceiveWindow: 256 << 10,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); _ = ln.Close(); wg.Wait() })
	authOK, err := wire.AppendMessageFrame(nil, &wire.AuthOK{ServerFlags: wire.KnownFlags | wire.ExtensionCaps})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		for {
			qc, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					str, err := qc.AcceptStream(ctx)
					if err != nil {
						return
					}
					go func(str *quic.Stream) {
						if _, err := wire.NewReader(str, 1<<20).ReadFrame(); err == nil {
							_, _ = str.Write(authOK)
						}
					}(str)
				}
			})
		}
	})
	return ln.Addr().String()
}

// A broker that stops reading leaves the cache flusher blocked on flow
// control. Callers that time out and retry must not grow the session's
// queue without bound: it stops at maxQueuedCacheBytes plus one request,
// and the requests beyond it fail with their deadline.
func TestCacheQueueBoundedWhenBrokerStopsReading(t *testing.T) {
	addr := startStalledBroker(t)
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	c, err := Dial(ctx, addr, Options{TLS: tlsConf, CacheConns: 1, CacheStreamsPerConn: 1,
		Reconnect: ReconnectPolicy{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.cacheLanes[0].session(ctx); err != nil { // authenticate before the short deadlines
		t.Fatal(err)
	}
	kv := c.Cache("default", "c")
	value := make([]byte, 64<<10)
	frame := len(value) + 1024 // the value plus a generous header and names
	var maxQueued, timedOut int
	for range 2 * maxQueuedCacheBytes / len(value) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		_, err := kv.Put(rctx, "k", value)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("put to a stalled broker: %v, want a deadline error", err)
		}
		timedOut++
		s := c.cacheLanes[0].live()
		if s == nil {
			t.Fatal("the session ended")
		}
		s.wmu.Lock()
		maxQueued = max(maxQueued, len(s.wbuf))
		s.wmu.Unlock()
	}
	if maxQueued > maxQueuedCacheBytes+frame {
		t.Fatalf("queued %d bytes for the flusher, bound is %d + one request", maxQueued, maxQueuedCacheBytes)
	}
	if maxQueued < maxQueuedCacheBytes-frame {
		t.Fatalf("queued at most %d bytes: the broker did not stall the flusher (test setup)", maxQueued)
	}
	t.Logf("%d puts timed out; at most %d bytes queued", timedOut, maxQueued)
}
