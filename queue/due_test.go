package queue

import (
	"context"
	"testing"
	"time"
)

// Due says whether Tick has work: nothing for an idle group or one whose
// deliveries are within their ack deadline; a deadline passed, a delayed
// redelivery due or a record ready to hand out make it due; a closed group
// never is.
func TestDueOnlyWhenTickHasWork(t *testing.T) {
	stream := memStream(t, 3)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, AckTimeout: 30 * time.Second, BackoffMin: time.Second})
	defer g.Close()
	if g.Due(clock.Now()) {
		t.Fatal("a group nobody joined is due")
	}
	m := joinT(t, g, "m", 3)
	if ds := nextT(t, m, 0); len(ds) != 3 {
		t.Fatalf("got %d deliveries", len(ds))
	}
	if g.Due(clock.Advance(30*time.Second - time.Microsecond)) {
		t.Fatal("due before the ack deadline")
	}
	now := clock.Advance(time.Microsecond)
	if !g.Due(now) {
		t.Fatal("not due at the ack deadline")
	}
	g.Tick(now) // the three go back, delayed by the backoff
	if s := g.Stats(); s.TimedOut != 3 || s.Delayed != 3 {
		t.Fatalf("after Tick: %+v", s)
	}
	if g.Due(clock.Advance(time.Second - time.Microsecond)) {
		t.Fatal("due before the backoff ends")
	}
	now = clock.Advance(time.Microsecond)
	if !g.Due(now) {
		t.Fatal("not due when the backoff ends")
	}
	g.Tick(now) // ready now; the member takes them
	ds := nextT(t, m, 0)
	ackT(t, m, offsets(ds)...)
	if g.Due(clock.Advance(time.Hour)) {
		t.Fatalf("due with everything acked: %+v", g.Stats())
	}

	// A nack without delay makes a record ready at once: due, as Tick
	// wakes a waiting member for it.
	fill(t, stream, 1)
	ds = nextT(t, m, 0)
	if err := m.Nack(context.Background(), ds[0].Offset, 0); err != nil {
		t.Fatal(err)
	}
	if !g.Due(clock.Now()) {
		t.Fatalf("not due with a record ready: %+v", g.Stats())
	}
	g.Close()
	if g.Due(clock.Now()) {
		t.Fatal("a closed group is due")
	}
}
