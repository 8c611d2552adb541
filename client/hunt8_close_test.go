package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// An acked publish still waiting for its ack when Close starts ends with
// ErrClosed, even when its request timeout runs out while Close is still
// waiting for the broker to read the fire-and-forget publishes before it
// (before: "no ack within 1s: context deadline exceeded").
//
// Close must start before the publish's own timeout has run out, else the
// publish rightly ends with it: a try in which the set-up (the publish
// sent, Close begun) took longer than the timeout is inconclusive, and
// tried again with twice the timeout.
func TestWaitingPublishDuringCloseIsErrClosed(t *testing.T) {
	addr := startStalledBroker(t)
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	testbroker.Retry(t, time.Second, 4, func(a *testbroker.Attempt) {
		ctx := testCtx(a)
		timeout := a.Limit
		c, err := Dial(ctx, addr, Options{TLS: tlsConf, PublishConns: 1, PublishStreamsPerConn: 1,
			RequestTimeout: timeout, Reconnect: ReconnectPolicy{Disabled: true}})
		if err != nil {
			a.Fatal(err)
		}
		a.Cleanup(func() { _ = c.Close() })
		// Written, never confirmed: Close waits (up to the request timeout)
		// for the broker to end the stream, which the stalled broker never does.
		if err := c.Publish(ctx, "default", "s", []byte("fire"), WithAck(wire.AckNone)); err != nil {
			a.Fatal(err)
		}
		start := time.Now() // the publish's timeout runs out after start+timeout
		errc := make(chan error, 1)
		go func() { errc <- c.Publish(context.Background(), "default", "s", []byte("acked")) }()
		l := c.laneFor("default", "s")
		for {
			s := l.live()
			if s == nil {
				a.Fatal("the publish session ended")
			}
			s.mu.Lock()
			n := len(s.pending)
			s.mu.Unlock()
			if n == 1 {
				break
			}
			if time.Since(start) > timeout+10*time.Second {
				a.Fatal("the acked publish was not sent")
			}
			time.Sleep(time.Millisecond)
		}
		// Close starts well before the publish's own timeout and its wait for
		// the lane outlasts that timeout.
		closed := make(chan struct{})
		go func() { _ = c.Close(); close(closed) }()
		for !c.closing.Load() {
			time.Sleep(100 * time.Microsecond)
		}
		if d := time.Since(start); d >= timeout {
			a.Inconclusive("Close began %v after the publish, past its request timeout %v", d.Round(time.Millisecond), timeout)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) {
				a.Fatalf("publish waiting during Close: %v, want ErrClosed", err)
			}
		case <-time.After(timeout + 10*time.Second):
			a.Fatal("the waiting publish did not end")
		}
		select {
		case <-closed:
		case <-time.After(closeFlushTimeout + 10*time.Second):
			a.Fatal("Close did not return")
		}
	})
}
