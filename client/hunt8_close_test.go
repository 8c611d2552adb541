package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// An acked publish still waiting for its ack when Close starts ends with
// ErrClosed, even when its request timeout runs out while Close is still
// waiting for the broker to read the fire-and-forget publishes before it
// (before: "no ack within 1s: context deadline exceeded").
func TestWaitingPublishDuringCloseIsErrClosed(t *testing.T) {
	addr := startStalledBroker(t)
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	const timeout = time.Second
	c, err := Dial(ctx, addr, Options{TLS: tlsConf, PublishConns: 1, PublishStreamsPerConn: 1,
		RequestTimeout: timeout, Reconnect: ReconnectPolicy{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// Written, never confirmed: Close waits (up to the request timeout)
	// for the broker to end the stream, which the stalled broker never does.
	if err := c.Publish(ctx, "default", "s", []byte("fire"), WithAck(wire.AckNone)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- c.Publish(context.Background(), "default", "s", []byte("acked")) }()
	l := c.laneFor("default", "s")
	for {
		s := l.live()
		if s == nil {
			t.Fatal("the publish session ended")
		}
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Since(start) > timeout/2 {
			t.Fatal("the acked publish was not sent")
		}
		time.Sleep(time.Millisecond)
	}
	// Close starts well before the publish's own timeout and its wait for
	// the lane outlasts that timeout.
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("publish waiting during Close: %v, want ErrClosed", err)
		}
	case <-time.After(timeout + 5*time.Second):
		t.Fatal("the waiting publish did not end")
	}
	select {
	case <-closed:
	case <-time.After(closeFlushTimeout + 3*time.Second):
		t.Fatal("Close did not return")
	}
}
