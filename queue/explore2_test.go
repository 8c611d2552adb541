package queue

import (
	"testing"
)

// Records handed to a member that leaves without its application seeing
// them (LeaveSeen) keep their attempt count across graceful restarts
// (Close, then NewGroup on the same state log) and across crashes after a
// Tick: the lowered counts reach the state log as a snapshot. (Before,
// each restart added one attempt, and a few restarts dead-lettered
// records nobody saw.)
func TestLeaveSeenSurvivesGracefulRestarts(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 3)
	clock := newFakeClock()
	dl := &deadLetters{}
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, MaxAttempts: 3, DeadLetter: dl.fn}
	}
	for round := range 6 {
		g := newGroupT(t, logs.stream, opts(logs))
		m := joinT(t, g, "m", 3)
		ds := nextT(t, m, 0)
		if len(ds) != 3 {
			t.Fatalf("round %d: %v (dead letters %+v)", round, offsets(ds), dl.got())
		}
		for _, d := range ds {
			if d.Attempt != 1 {
				t.Fatalf("round %d: offset %d at attempt %d; nobody ever saw it", round, d.Offset, d.Attempt)
			}
		}
		g.Tick(clock.Now()) // the attempt counts reach the state log
		m.LeaveSeen()
		if round%2 == 1 {
			g.Tick(clock.Now()) // writes the lowered counts; then a crash
			logs = logs.crash()
			continue
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := dl.got(); len(got) != 0 {
		t.Fatalf("dead letters %+v; nobody saw these records", got)
	}
}
