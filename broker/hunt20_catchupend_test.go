package broker

import (
	"context"
	"errors"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// A durable subscription still replaying the log when its stream ends
// (deleted, or the broker closes) cannot read the rest (the log is
// closed): the events it had yet to replay must count as dropped, so that
// delivered + dropped covers every event from its start, as for every
// other subscription. They were silently lost.
func TestHunt20CatchUpCutByStreamEndCountsTheRest(t *testing.T) {
	ends := map[string]func(b *Broker) error{
		"delete": func(b *Broker) error { return b.DeleteStream("t", "ns", "s") },
		"close":  func(b *Broker) error { b.Close(); return nil },
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			b, s := newLoggedStream(t, Options{MaxEventsPerFrame: 2}, commitlog.NewMemory(1<<20, 1<<30))
			const n = 10
			sub := replayFromEarliest(t, s, n)
			defer sub.Close()
			out, got, err := sub.NextBatch(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkSeq(t, decodeFrames(t, out), 0, uint64(got))
			if err := end(b); err != nil {
				t.Fatal(err)
			}
			for range 3 { // the end is reported, and counted, once
				if _, _, err := sub.NextBatch(context.Background(), nil); !errors.Is(err, ErrSubscriptionEnded) || !errors.Is(err, s.Err()) {
					t.Fatalf("NextBatch after the end = %v, want the stream's end (%v)", err, s.Err())
				}
			}
			st := sub.Stats()
			if st.Delivered != uint64(got) || st.Delivered+st.Dropped != n {
				t.Fatalf("delivered %d + dropped %d, want %d delivered and %d in all", st.Delivered, st.Dropped, got, n)
			}
		})
	}
}

// A durable publish whose records reached the log but whose stream ended
// while it waited for its turn to fan out (behind an earlier publish
// between its append and its fanout) is stored: its error matches
// ErrStoredNotDelivered, and it must be counted as published, as it is
// when the broker's close ends the stream, and as an in-memory publish
// cut short by a deletion is. It was counted nowhere (neither published
// nor refused), which on a stream failed by its log (still listed and
// exported) hides a publish from every counter.
func TestHunt20StoredPublishCutByDeleteIsCounted(t *testing.T) {
	b, s := newLoggedStream(t, Options{}, commitlog.NewMemory(1<<20, 1<<30))
	ctx := context.Background()
	// An earlier publish that has appended and not yet fanned out: offset
	// 0 is taken in the log, so the next publish waits for its turn.
	if _, err := s.Log().Append(ctx, [][]byte{seqPayload(0)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Publish(ctx, [][]byte{seqPayload(1), seqPayload(2)}); done <- err }()
	waitGoroutineIn(t, done, "publishLogged", "sync.(*Cond).Wait")
	if err := b.DeleteStream("t", "ns", "s"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrStreamDeleted) || !errors.Is(err, ErrStoredNotDelivered) {
		t.Fatalf("publish = %v, want stored, then the stream deleted", err)
	}
	st := s.Stats()
	if st.PublishCalls != 1 || st.Published != 2 || st.Refused != 0 {
		t.Fatalf("publish calls %d, events %d, refused %d; want 1 call of 2 events stored, none refused", st.PublishCalls, st.Published, st.Refused)
	}
}
