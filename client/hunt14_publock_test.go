package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// A fire-and-forget publish alone on an idle publish stream is written
// directly, and against a broker that stopped reading that write lasts as
// long as its caller's context. Another publish to the same stream must
// still end with its own context: it queues its frame behind the stalled
// write (bounded, see maxQueuedBytes) and gives up at its deadline,
// instead of waiting for the stalled write's caller.
func TestHunt14PublishNotHeldByStalledWrite(t *testing.T) {
	c, ctx := dialStalledBroker(t)
	l := c.laneFor("default", "s")
	s, err := l.session(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	stalledCtx, release := context.WithCancel(ctx)
	defer release()
	stalled := make(chan error, 1)
	go func() { // larger than the broker's 64 KiB window: it never completes
		stalled <- c.Publish(stalledCtx, "default", "s", make([]byte, 1<<20), WithAck(wire.AckNone))
	}()
	testwait.Eventually(t, "the fire-and-forget write under way", func() bool {
		if !s.q.mu.TryLock() {
			return true // held by the write
		}
		defer s.q.mu.Unlock()
		return s.q.flushing // or marked busy by it
	})

	done := make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		done <- c.Publish(pctx, "default", "s", []byte("acked"))
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("acked publish behind a stalled write: %v, want its deadline", err)
		}
	case <-time.After(10 * time.Second): // far beyond its 50ms deadline: it is stuck
		release()
		<-stalled
		t.Fatal("a publish with a 50ms deadline did not return while another publish's write was stalled")
	}
	release()
	if err := <-stalled; !errors.Is(err, context.Canceled) {
		t.Fatalf("stalled publish: %v, want its context's cancellation", err)
	}
}
