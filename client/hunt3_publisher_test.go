package client

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// A Flush whose context ends before its answer must not swallow the
// failure it would have reported: the next Flush (or Close) reports it.
// (The abandoned flush marker used to take the error and its count, so
// Close returned nil for events that were never published.)
func TestPublisherAbandonedFlushKeepsError(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	p := c.Publisher("default", "nope", PublisherOptions{})
	for range 3 {
		if err := p.Publish(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	first := p.Flush(gone) // its answer needs a round trip: ctx wins
	second := p.Close(ctx)
	t.Logf("abandoned Flush: %v; Close: %v", first, second)
	if !isServerError(first, "stream not found") && !isServerError(second, "stream not found") {
		t.Fatalf("the publish failure was lost: abandoned Flush = %v, Close = %v", first, second)
	}
	var np *NotPublishedError
	if isServerError(second, "stream not found") && (!errors.As(second, &np) || np.Count != 3 || !strings.Contains(second.Error(), "3 events not published")) {
		t.Errorf("Close = %v, want the count of the 3 failed events", second)
	}
}

// Publisher.Close(ctx) returns once ctx ends even while a Publish is
// blocked on a full queue (the broker is gone and the sender retries
// without a request timeout), and its error counts the events dropped.
func TestPublisherCloseBoundedByCtxUnderBlockedPublish(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{RequestTimeout: -1})
	ctx := testCtx(t)
	p := c.Publisher("default", "demo", PublisherOptions{QueueSize: 1, MaxBatch: 1})
	if err := p.Publish(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	// Publish until one blocks: the queue holds one event, the sender one
	// more in the batch it cannot send.
	pubCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	var accepted atomic.Int64
	published := make(chan struct{})
	go func() {
		defer close(published)
		for p.Publish(pubCtx, []byte("x")) == nil {
			accepted.Add(1)
		}
	}()
	// Two accepted events fill the queue and the sender's hands: the next
	// Publish blocks (in the moment between two calls it does not, and the
	// test then passes without having shown anything).
	for accepted.Load() < 2 {
		runtime.Gosched()
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	closeCtx, cancelClose := context.WithCancel(ctx)
	closed := make(chan error, 1)
	go func() { closed <- p.Close(closeCtx) }()
	cancelClose()
	var err error
	select {
	case err = <-closed:
	case <-ctx.Done():
		t.Fatal("Publisher.Close did not return after its context ended, while a Publish was blocked on the full queue")
	}
	stopPublishing()
	<-published
	n := accepted.Load()
	t.Logf("Close: %v (%d events accepted after the broker stopped)", err, n)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "events not published") {
		t.Errorf("Close = %v: %d accepted events were dropped uncounted", err, n)
	}
}

// After Client.Close, Publisher.Close reports the events the Publisher
// had accepted and will never send.
func TestPublisherCloseAfterClientCloseCountsDropped(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{RequestTimeout: -1})
	ctx := testCtx(t)
	p := c.Publisher("default", "demo", PublisherOptions{QueueSize: 64, MaxBatch: 1})
	b.Stop() // the sender cannot send: accepted events wait in the queue
	for range 10 {
		if err := p.Publish(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close()
	err := p.Close(ctx)
	t.Logf("Publisher.Close after Client.Close: %v", err)
	var np *NotPublishedError
	if !errors.Is(err, ErrClosed) || !errors.As(err, &np) || np.Count != 10 || !strings.Contains(err.Error(), "10 events not published") {
		t.Fatalf("Publisher.Close = %v, want ErrClosed counting the 10 unsent events", err)
	}
}
