package queue

import (
	"slices"
	"testing"
	"time"
)

// A purge under a working group: records in flight may still be acked;
// those the stream no longer holds are never delivered again, whether
// they come back by a nack, an ack timeout, or were read ahead, nor
// dead-lettered when their attempts run out: each is done and counted
// lost, as the records the group had not read.
func TestHunt12PurgeUnderWorkingGroup(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 20)
	clock := newFakeClock()
	dl := &deadLetters{}
	g := newGroupT(t, logs.stream, Options{Clock: clock, AckTimeout: 10 * time.Second, BackoffMin: time.Second,
		BackoffMax: time.Second, MaxAttempts: 2, ReadBatch: 8, DeadLetter: dl.fn})
	defer g.Close()
	a := joinT(t, g, "a", 4)
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{0, 1, 2, 3}) {
		t.Fatalf("first delivery %v", got)
	}
	if err := a.Nack(t.Context(), 1, 0); err != nil {
		t.Fatal(err)
	}
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("after a nack %v", got)
	}
	// 1 is at its last attempt; 4..7 are read ahead; 8..19 are not read.
	if _, _, err := logs.stream.Purge(); err != nil {
		t.Fatal(err)
	}
	if s := g.Stats(); s.Lag != 8 || s.InFlight != 4 || s.Buffered != 4 {
		t.Fatalf("after the purge: %+v", s)
	}
	ackT(t, a, 0) // in flight: an ack still works
	if err := a.Nack(t.Context(), 1, 0); err != nil {
		t.Fatal(err)
	}
	if got := dl.got(); len(got) != 0 {
		t.Fatalf("a purged record was dead-lettered: %+v", got)
	}
	fill(t, logs.stream, 2) // 20 21
	ds := nextT(t, a, 0)
	if !slices.Equal(offsets(ds), []uint64{20, 21}) || string(ds[0].Payload) != "rec-20" {
		t.Fatalf("after the purge the group delivered %v, want 20 21", offsets(ds))
	}
	ackT(t, a, 20, 21)
	g.Tick(clock.Advance(10 * time.Second)) // 2 3 time out: back after 1s
	g.Tick(clock.Advance(time.Second))
	fill(t, logs.stream, 1) // 22
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{22}) {
		t.Fatalf("after the timeouts the group delivered %v, want 22", got)
	}
	ackT(t, a, 22)
	s := g.Stats()
	if s.Lost != 1+2+4+12 || s.Lag != 0 || s.InFlight != 0 || s.Pending != 0 || s.Floor != 23 || s.Cursor != 23 ||
		s.DeadLettered != 0 || s.StateErrors != 0 {
		t.Fatalf("at the end: %+v", s)
	}
}

// A durable group restarted after its stream was purged: the purged
// records it held pending are not redelivered (they are lost), no error,
// and it goes on with the records published after the purge.
func TestHunt12DurableGroupRestartAfterPurge(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 20)
	clock := newFakeClock()
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: 10 * time.Second, ReadBatch: 8}
	}
	g := newGroupT(t, logs.stream, opts(logs))
	a := joinT(t, g, "a", 6)
	nextT(t, a, 0) // 0..5
	ackT(t, a, 0, 2)
	if _, _, err := logs.stream.Purge(); err != nil {
		t.Fatal(err)
	}
	fill(t, logs.stream, 3) // 20 21 22
	g.Close()
	logs = logs.crash()
	// As the server does when it opens the stream's log.
	if res, err := ClampState(logs.state, logs.stream.Next()); err != nil || res.Clamped {
		t.Fatalf("ClampState: %+v %v", res, err)
	}
	g = newGroupT(t, logs.stream, opts(logs))
	defer g.Close()
	a = joinT(t, g, "a", 10)
	ds := nextT(t, a, 0)
	if !slices.Equal(offsets(ds), []uint64{20, 21, 22}) {
		t.Fatalf("after the restart %v", offsets(ds))
	}
	ackT(t, a, 20, 21, 22)
	if s := g.Stats(); s.Lost != 4+14 || s.Lag != 0 || s.Floor != 23 || s.StateErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// The records a durable group skipped because a purge removed them are
// not taken for records it delivered at its next restart: its state log
// records the skip before any ack beyond it (a crash right after the
// acks) or at Close. Before, the replay made every skipped offset pending
// (one map entry each, all read back from the stream: a purge of a large
// backlog made the restart cost memory and time in proportion) and
// counted them as lost a second time.
func TestHunt12DurableGroupSkipIsRecorded(t *testing.T) {
	for _, crash := range []bool{false, true} {
		logs := openDiskLogs(t, t.TempDir())
		fill(t, logs.stream, 20)
		clock := newFakeClock()
		opts := func(d *diskLogs) Options {
			return Options{Clock: clock, StateLog: d.state, AckTimeout: 10 * time.Second, ReadBatch: 8}
		}
		g := newGroupT(t, logs.stream, opts(logs))
		a := joinT(t, g, "a", 6)
		ackT(t, a, offsets(nextT(t, a, 0))...) // 0..5; 6 7 are buffered
		if _, _, err := logs.stream.Purge(); err != nil {
			t.Fatal(err)
		}
		fill(t, logs.stream, 3) // 20 21 22
		ds := nextT(t, a, 0)    // 6 7 in the buffer and 8..19 are skipped
		if !slices.Equal(offsets(ds), []uint64{20, 21, 22}) {
			t.Fatalf("after the purge %v", offsets(ds))
		}
		ackT(t, a, offsets(ds)...)
		if s := g.Stats(); s.Lost != 14 || s.Floor != 23 || s.StateErrors != 0 {
			t.Fatalf("before the restart %+v", s)
		}
		if !crash {
			g.Close()
		}
		logs = logs.crash()
		g = newGroupT(t, logs.stream, opts(logs))
		if s := g.Stats(); s.Lost != 0 || s.Pending != 0 || s.Lag != 0 || s.Floor != 23 || s.Cursor != 23 {
			t.Fatalf("crash %v: after the restart %+v", crash, s)
		}
		g.Close()
		logs.close()
	}
}
