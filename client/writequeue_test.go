package client

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// startStalledBroker accepts connections, answers each stream's auth with
// auth_ok (granting binary cache frames) and then never reads again, with
// small flow-control windows: the client's writes stall once a window is
// full. It stops when the test ends.
func startStalledBroker(t *testing.T) string {
	t.Helper()
	authOK := authOKFrame(t)
	return startFakeBroker(t, transport.Options{
		InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10,
		InitialConnectionReceiveWindow: 256 << 10, MaxConnectionReceiveWindow: 256 << 10,
	}, func(_ context.Context, _ *quic.Conn, str *quic.Stream) {
		if _, err := wire.NewReader(str, 1<<20).ReadFrame(); err == nil {
			_, _ = str.Write(authOK)
		}
	})
}

// dialStalledBroker connects a client with one publish and one cache
// stream to a new startStalledBroker; it is closed when the test ends.
func dialStalledBroker(t *testing.T) (*Client, context.Context) {
	t.Helper()
	addr := startStalledBroker(t)
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	c, err := Dial(ctx, addr, Options{TLS: tlsConf, PublishConns: 1, PublishStreamsPerConn: 1,
		CacheConns: 1, CacheStreamsPerConn: 1, Reconnect: ReconnectPolicy{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, ctx
}

// A broker that stops reading leaves the cache flusher blocked on flow
// control. Callers that time out and retry must not grow the session's
// queue without bound: it stops at maxQueuedBytes plus one request,
// and the requests beyond it fail with their deadline.
func TestCacheQueueBoundedWhenBrokerStopsReading(t *testing.T) {
	c, ctx := dialStalledBroker(t)
	if _, err := c.cacheLanes[0].session(ctx); err != nil { // authenticate before the short deadlines
		t.Fatal(err)
	}
	kv := c.Cache("default", "c")
	value := make([]byte, 64<<10)
	frame := len(value) + 1024 // the value plus a generous header and names
	var maxQueued, timedOut int
	for range 2 * maxQueuedBytes / len(value) {
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
		s.q.mu.Lock()
		maxQueued = max(maxQueued, len(s.q.buf))
		s.q.mu.Unlock()
	}
	if maxQueued > maxQueuedBytes+frame {
		t.Fatalf("queued %d bytes for the flusher, bound is %d + one request", maxQueued, maxQueuedBytes)
	}
	if maxQueued < maxQueuedBytes-frame {
		t.Fatalf("queued at most %d bytes: the broker did not stall the flusher (test setup)", maxQueued)
	}
	t.Logf("%d puts timed out; at most %d bytes queued", timedOut, maxQueued)
}

// The publish lane's write queue has the same bound: with an acked publish
// in flight (so later frames queue behind the flusher) and a broker that
// stopped reading, fire-and-forget publishes fill the queue up to
// maxQueuedBytes plus one frame, and then fail with their deadline instead
// of growing it.
func TestPublishQueueBoundedWhenBrokerStopsReading(t *testing.T) {
	c, ctx := dialStalledBroker(t)
	l := c.laneFor("default", "s")
	if _, err := l.session(ctx, false); err != nil {
		t.Fatal(err)
	}
	ackCtx, cancelAck := context.WithCancel(ctx)
	acked := make(chan error, 1)
	go func() { acked <- c.Publish(ackCtx, "default", "s", []byte("waits for an ack that never comes")) }()
	for deadline := time.Now().Add(testwait.Liveness); ; { // until its ack slot is registered
		s := l.live()
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the acked publish never registered")
		}
		runtime.Gosched()
	}
	value := make([]byte, 64<<10)
	frame := len(value) + 1024
	var maxQueued, timedOut int
	for range 2 * maxQueuedBytes / len(value) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		err := c.Publish(rctx, "default", "s", value, WithAck(wire.AckNone))
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		case err != nil:
			t.Fatalf("fire-and-forget publish to a stalled broker: %v", err)
		}
		s := l.live()
		if s == nil {
			t.Fatal("the session ended")
		}
		s.q.mu.Lock()
		maxQueued = max(maxQueued, len(s.q.buf))
		s.q.mu.Unlock()
	}
	cancelAck()
	if err := <-acked; !errors.Is(err, context.Canceled) {
		t.Fatalf("acked publish: %v, want its context's cancellation", err)
	}
	if maxQueued > maxQueuedBytes+frame || maxQueued < maxQueuedBytes-frame {
		t.Fatalf("queued at most %d bytes; want about the bound %d (+ one frame)", maxQueued, maxQueuedBytes)
	}
	if timedOut == 0 {
		t.Fatal("no publish waited for room in the full queue")
	}
	t.Logf("%d publishes timed out waiting for room; at most %d bytes queued", timedOut, maxQueued)
}

// authOKFrame is a fake broker's auth_ok granting every capability this
// SDK speaks.
func authOKFrame(t testing.TB) []byte {
	t.Helper()
	f, err := wire.AppendMessageFrame(nil, &wire.AuthOK{ServerFlags: wire.KnownFlags | wire.ExtensionCaps})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
