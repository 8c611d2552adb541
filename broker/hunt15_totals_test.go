package broker

import (
	"context"
	"testing"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// A durable subscription whose consumer is joining live delivery (it has
// read the whole log and waits for the stream lock) while the subscription
// is being closed (Close has closed done but not yet removed it) must keep
// its counts in the stream's totals all along: SubTotals feeds Prometheus
// counters, and a counter that goes down, even for a moment, reads as a
// reset (rate() then counts the whole total again).
func TestSubTotalsNeverDropWhenClosedCatchUpJoins(t *testing.T) {
	_, s := newLoggedStream(t, Options{}, commitlog.NewMemory(1<<20, 1<<30))
	for i := range uint64(3) {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	catching, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	s.mu.Lock() // as a publisher holds it: the join below waits for it
	joined := make(chan error, 1)
	go func() {
		for {
			if _, _, err := catching.NextBatch(ctx, nil); err != nil {
				joined <- err
				return
			}
		}
	}()
	waitGoroutineIn(t, joined, "broker.(*Subscription).catchUpBatch", "sync.(*Mutex).Lock")
	before := s.SubTotals()
	if before.Delivered != 3 {
		s.mu.Unlock()
		t.Fatalf("delivered %d before the join, want 3", before.Delivered)
	}

	// Close in progress: done is closed, the removal not yet made (held
	// here at SetSink, which waits for the subscription's lock).
	catching.mu.Lock()
	closed := make(chan struct{})
	go func() {
		catching.Close()
		close(closed)
	}()
	<-catching.Done()
	s.mu.Unlock() // the consumer joins (or finds it closed) now
	<-joined
	mid := s.SubTotals()
	catching.mu.Unlock()
	<-closed
	after := s.SubTotals()

	if mid.Delivered < before.Delivered || after.Delivered < mid.Delivered {
		t.Fatalf("delivered total went down: %d, then %d while closing, then %d", before.Delivered, mid.Delivered, after.Delivered)
	}
	if after.Subscriptions != 0 {
		t.Fatalf("%d live subscriptions after Close, want 0", after.Subscriptions)
	}
}
