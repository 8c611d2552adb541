package queue

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A dead letter that cannot be kept (no dead-letter stream: the
// DeadLetterFunc says so with ErrDeadLetterDropped, or there is no
// DeadLetterFunc at all) is dropped: the record is done, as any dead
// letter, and the drop is counted apart in Stats.DeadLettersDropped, so an
// operator can tell "sent to the dead-letter stream" from "lost". Exact
// counts: of 5 records out of attempts, 3 go to the dead-letter stream
// and 2 are dropped.
func TestHunt14DeadLettersDroppedCounted(t *testing.T) {
	clock := newFakeClock()
	var sent []uint64
	dl := func(_ context.Context, rec commitlog.Record, _ int, _ string) error {
		if rec.Offset%2 == 1 {
			return fmt.Errorf("no stream jobs.dlq: %w", ErrDeadLetterDropped)
		}
		sent = append(sent, rec.Offset)
		return nil
	}
	// Offsets 0..4: 0, 2 and 4 are sent, 1 and 3 dropped.
	g := newGroupT(t, memStream(t, 5), Options{Clock: clock, MaxAttempts: 1, AckTimeout: time.Second, DeadLetter: dl})
	m := joinT(t, g, "a", 5)
	ds := nextT(t, m, 0)
	if got := offsets(ds); !slices.Equal(got, []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("delivered %v", got)
	}
	// Two nacked (dead-lettered at once), three timed out (at Tick).
	for _, off := range []uint64{0, 1} {
		if err := m.Nack(t.Context(), off, 0); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Second)
	g.Tick(clock.Now())
	if !slices.Equal(sent, []uint64{0, 2, 4}) {
		t.Fatalf("dead letters sent for %v, want [0 2 4]", sent)
	}
	s := g.Stats()
	if s.DeadLettered != 5 || s.DeadLettersDropped != 2 || s.DeadLetterErrors != 0 || s.Pending != 0 || s.Lag != 0 || s.Floor != 5 {
		t.Fatalf("stats %+v, want 5 dead-lettered of which 2 dropped, nothing pending", s)
	}

	// Without a DeadLetterFunc every dead letter is dropped.
	g2 := newGroupT(t, memStream(t, 3), Options{Clock: clock, MaxAttempts: 1})
	m2 := joinT(t, g2, "b", 3)
	for _, d := range nextT(t, m2, 0) {
		if err := m2.Nack(t.Context(), d.Offset, 0); err != nil {
			t.Fatal(err)
		}
	}
	if s := g2.Stats(); s.DeadLettered != 3 || s.DeadLettersDropped != 3 || s.Pending != 0 {
		t.Fatalf("without DeadLetter: %+v, want 3 dead-lettered, 3 dropped", s)
	}
}
