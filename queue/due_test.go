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

	// A nack without delay makes a record ready at once; with no member
	// waiting for work, Tick has nobody to wake: not due. The member's
	// next Next takes it.
	fill(t, stream, 1)
	ds = nextT(t, m, 0)
	if err := m.Nack(context.Background(), ds[0].Offset, 0); err != nil {
		t.Fatal(err)
	}
	if g.Due(clock.Now()) {
		t.Fatalf("due with a record ready and no member waiting: %+v", g.Stats())
	}
	if re := nextT(t, m, 0); len(re) != 1 || re[0].Offset != ds[0].Offset {
		t.Fatalf("after the nack, Next gave %v, want offset %d", offsets(re), ds[0].Offset)
	}
	g.Close()
	if g.Due(clock.Now()) {
		t.Fatal("a closed group is due")
	}
}

// A group whose records wait for a member that is not there (its consumer
// left, or timed out and is gone) is not due: Tick could only wake a
// member, and none waits. The server ticks every group ten times a
// second, so a thousand such groups were a thousand goroutines per tick
// on an idle broker. The records wait for the next member, and one
// blocked in Next gets them at once.
func TestDueNotForRecordsNobodyWaitsFor(t *testing.T) {
	stream := memStream(t, 2)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock})
	defer g.Close()
	m := joinT(t, g, "m", 2)
	if ds := nextT(t, m, 0); len(ds) != 2 {
		t.Fatalf("got %d deliveries", len(ds))
	}
	m.Leave() // both records are ready for redelivery, and nobody is here
	if s := g.Stats(); s.Pending != 2 || s.Members != 0 {
		t.Fatalf("after Leave: %+v", s)
	}
	if g.Due(clock.Advance(time.Second)) {
		t.Fatalf("due with records ready and no member: %+v", g.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m2 := joinT(t, g, "m2", 2)
	if r := <-asyncNext(ctx, m2, 0); r.err != nil || len(r.ds) != 2 {
		t.Fatalf("the next member's Next: %v, %d deliveries", r.err, len(r.ds))
	}
}
