package queue

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// A record whose dead letter failed waits in the group for the next Tick
// to retry it. If a purge removes it meanwhile, the group no longer holds
// it for the stream: it is done and counted lost, not dead-lettered (the
// package doc: a record dropped "while it waits for a redelivery or its
// dead letter" is never handed out), and a durable group does not bring
// it back at a restart.
func TestHunt13PurgedWhileAwaitingDeadLetter(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 4)
	clock := newFakeClock()
	dl := &deadLetters{fail: errors.New("dead-letter stream unavailable")}
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: 10 * time.Second, MaxAttempts: 1, DeadLetter: dl.fn}
	}
	g := newGroupT(t, logs.stream, opts(logs))
	a := joinT(t, g, "a", 2)
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{0, 1}) {
		t.Fatalf("first delivery %v", got)
	}
	if err := a.Nack(t.Context(), 0, 0); err != nil { // its last attempt: its dead letter fails
		t.Fatal(err)
	}
	if s := g.Stats(); s.DeadLetterErrors != 1 || s.Pending != 1 {
		t.Fatalf("after the failed dead letter: %+v", s)
	}
	if _, _, err := logs.stream.Purge(); err != nil {
		t.Fatal(err)
	}
	dl.mu.Lock()
	dl.fail = nil
	dl.mu.Unlock()
	g.Tick(clock.Now())
	if got := dl.got(); len(got) != 0 {
		t.Fatalf("a purged record was dead-lettered: %+v", got)
	}
	ackT(t, a, 1) // in flight: may still be acked
	fill(t, logs.stream, 1)
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("after the purge %v", got)
	}
	ackT(t, a, 4)
	s := g.Stats()
	if s.Lost != 3 || s.DeadLettered != 0 || s.Lag != 0 || s.Pending != 0 || s.Floor != 5 {
		t.Fatalf("at the end: %+v", s)
	}
	g.Close()
	logs = logs.crash()
	g = newGroupT(t, logs.stream, opts(logs))
	defer g.Close()
	g.Tick(clock.Now())
	if s := g.Stats(); s.Lost != 0 || s.Pending != 0 || s.Lag != 0 || s.Floor != 5 || s.DeadLettered != 0 {
		t.Fatalf("after the restart: %+v", s)
	}
	if got := dl.got(); len(got) != 0 {
		t.Fatalf("a purged record was dead-lettered after the restart: %+v", got)
	}
}
