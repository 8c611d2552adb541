package broker

import (
	"context"
	"testing"
)

// SubTotals keep the counts of closed subscriptions: they never go down.
func TestSubTotalsKeepClosedSubscriptions(t *testing.T) {
	_, s := newTestStream(t, Options{QueueCapacity: 2})
	a, err := s.Subscribe(SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Subscribe(SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range uint64(3) { // 3 single-event frames into queues of 2: one dropped each
		if _, err := s.Publish(ctx, [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.SubTotals()
	want := SubTotals{Subscriptions: 2, QueueLen: 4, Enqueued: 4, Dropped: 2}
	if got != want {
		t.Fatalf("before draining: %+v, want %+v", got, want)
	}
	if n := len(drain(t, a)); n != 2 {
		t.Fatalf("drained %d events, want 2", n)
	}
	a.Close()
	got = s.SubTotals()
	want = SubTotals{Subscriptions: 1, QueueLen: 2, Enqueued: 4, Dropped: 2, Delivered: 2}
	if got != want {
		t.Fatalf("after closing one: %+v, want %+v", got, want)
	}
	b.Close()
	if got := s.SubTotals(); got.Subscriptions != 0 || got.Enqueued != 4 || got.Dropped != 2 || got.Delivered != 2 {
		t.Fatalf("after closing both: %+v", got)
	}
}
