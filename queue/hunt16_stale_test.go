package queue

import (
	"slices"
	"testing"
	"time"
)

// A Next that has taken deliveries and reads the stream for more (the
// group's lock released) while the ack timeout takes them back returns
// only the deliveries still in flight to its member: one taken back is
// waiting for its redelivery, held by another member, or dead-lettered,
// and handing it to the application too would have two consumers hold
// one record at once, or a record delivered after its dead letter.
// Before, Next returned them all.
func TestHunt16NextDropsDeliveriesTakenBackDuringRead(t *testing.T) {
	t.Run("redelivered", func(t *testing.T) {
		stream := &readHookLog{Log: memStream(t, 2), from: 1}
		clock := newFakeClock()
		g := newGroupT(t, stream, Options{Clock: clock, ReadBatch: 1, AckTimeout: 10 * time.Second, BackoffMin: time.Second})
		defer g.Close()
		a, b := joinT(t, g, "a", 2), joinT(t, g, "b", 2)
		var gotB []Delivery
		stream.hook = func() { // a has taken 0 and reads 1
			g.Tick(clock.Advance(10 * time.Second))
			clock.Advance(time.Second)
			gotB = nextT(t, b, 0)
		}
		gotA := nextT(t, a, 0)
		if !slices.Equal(offsets(gotB), []uint64{0}) || !slices.Equal(attempts(gotB), []int{2}) {
			t.Fatalf("b got %v at attempts %v, want [0] at [2]", offsets(gotB), attempts(gotB))
		}
		if !slices.Equal(offsets(gotA), []uint64{1}) {
			t.Fatalf("a got %v while b holds 0, want [1]", offsets(gotA))
		}
		if a.InFlight() != 1 || b.InFlight() != 1 {
			t.Fatalf("in flight: a %d, b %d, want 1 and 1", a.InFlight(), b.InFlight())
		}
	})
	t.Run("dead-lettered", func(t *testing.T) {
		var dead deadLetters
		stream := &readHookLog{Log: memStream(t, 2), from: 1}
		clock := newFakeClock()
		g := newGroupT(t, stream, Options{Clock: clock, ReadBatch: 1, AckTimeout: 10 * time.Second, MaxAttempts: 1, DeadLetter: dead.fn})
		defer g.Close()
		a := joinT(t, g, "a", 2)
		stream.hook = func() { g.Tick(clock.Advance(10 * time.Second)) }
		gotA := nextT(t, a, 0)
		if got := dead.got(); len(got) != 1 || got[0].off != 0 {
			t.Fatalf("dead letters %+v, want 0's", got)
		}
		if !slices.Equal(offsets(gotA), []uint64{1}) {
			t.Fatalf("a got %v after 0 was dead-lettered, want [1]", offsets(gotA))
		}
	})
}
