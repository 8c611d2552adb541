package e2e

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/faultnet"
	"github.com/felixmq/felix/internal/testbroker"
)

// An outage longer than Options.RequestTimeout does not end Consume: once
// the event connection is gone, Client.Consumer redials under
// RequestTimeout, and while the link is still down that times out with
// the caller's context live. That is a lost connection (a *ConnectionError,
// matching ErrDisconnected), so Consume goes on rejoining, and consumes
// what is published after the link returns. (It used to return a bare
// context.DeadlineExceeded, and the worker stopped for good.)
func TestFaultConsumeOutageLongerThanRequestTimeout(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/dur"))
	px := faultProxy(t, tb, faultnet.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	direct := dial(t, tb, client.Options{})
	qc := dialVia(t, tb, px, shortIdle(2*time.Second))
	var handled atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- qc.Consume(ctx, "default", "dur", "g", func(context.Context, *client.Message) error {
			handled.Add(1)
			return nil
		})
	}()
	if err := direct.Publish(ctx, "default", "dur", []byte("before")); err != nil {
		t.Fatal(err)
	}
	for handled.Load() < 1 {
		within(t, ctx, "first record")
		time.Sleep(10 * time.Millisecond)
	}

	px.SetBlackhole(true) // a 5 s outage: idle timeout 1 s, RequestTimeout 2 s
	returned := false
	defer func() {
		cancel()
		if !returned {
			<-done
		}
	}()
	select {
	case err := <-done:
		returned = true
		t.Errorf("Consume returned during the outage while its context was live (ctx.Err() = %v): %v (%T, matches ErrDisconnected: %v)",
			ctx.Err(), err, err, errors.Is(err, client.ErrDisconnected))
	case <-time.After(5 * time.Second):
	}
	// Client.Consumer, called while the link is down, fails with a
	// *ConnectionError or by its context, never a bare timeout.
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	if _, err := qc.Consumer(cctx, "default", "dur", "other"); cctx.Err() == nil && !errors.Is(err, client.ErrDisconnected) {
		t.Errorf("Consumer during the outage, its context live: %v (%T), want a *ConnectionError", err, err)
	}
	ccancel()
	px.SetBlackhole(false)

	if err := direct.Publish(ctx, "default", "dur", []byte("after")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for handled.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the record published after the outage was never consumed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
