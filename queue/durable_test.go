package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// diskLogs are a stream and a state log on disk that a test can "crash"
// (close the files, forget the group) and reopen.
type diskLogs struct {
	t             *testing.T
	dir           string
	stateOpts     commitlog.Options
	stream, state *commitlog.DiskLog
}

func openDiskLogs(t *testing.T, dir string) *diskLogs {
	t.Helper()
	return openDiskLogsWith(t, dir, commitlog.Options{Sync: commitlog.SyncAlways})
}

// openDiskLogsWith opens the stream and the state log in dir, the state
// log with stateOpts (quiet); they are closed at the end of the test.
func openDiskLogsWith(t *testing.T, dir string, stateOpts commitlog.Options) *diskLogs {
	t.Helper()
	d := &diskLogs{t: t, dir: dir, stateOpts: stateOpts}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stateOpts.Logger = quiet
	var err error
	if d.stream, err = commitlog.Open(filepath.Join(dir, "stream"), commitlog.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if d.state, err = commitlog.Open(filepath.Join(dir, "state"), stateOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

func (d *diskLogs) close() {
	d.stream.Close()
	d.state.Close()
}

// crash closes the log files (the abandoned Group is never closed) and
// opens them again.
func (d *diskLogs) crash() *diskLogs {
	d.close()
	return openDiskLogsWith(d.t, d.dir, d.stateOpts)
}

// Acked records are never redelivered after a crash; records delivered
// and not acked are, with their attempt counts; new records follow.
func TestDurableStateSurvivesCrash(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 20)
	clock := newFakeClock()
	dl := &deadLetters{}
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: 10 * time.Second, BackoffMin: time.Second,
			MaxAttempts: 3, DeadLetter: dl.fn}
	}
	g := newGroupT(t, logs.stream, opts(logs))
	a := joinT(t, g, "a", 10)
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("first delivery %v", got)
	}
	ackT(t, a, 0, 1, 2, 4, 6)               // also writes the attempt counts of 3 5 7 8 9
	g.Tick(clock.Advance(10 * time.Second)) // 3 5 7 8 9 time out
	g.Tick(clock.Advance(time.Second))
	ds := nextT(t, a, 5)
	if !slices.Equal(offsets(ds), []uint64{3, 5, 7, 8, 9}) || !slices.Equal(attempts(ds), []int{2, 2, 2, 2, 2}) {
		t.Fatalf("redelivery %v %v", offsets(ds), attempts(ds))
	}
	ackT(t, a, 5) // writes attempt 2 of 3 7 8 9
	if got := offsets(nextT(t, a, 2)); !slices.Equal(got, []uint64{10, 11}) {
		t.Fatalf("new records %v", got) // their attempt counts are not written: no ack or Tick follows
	}

	logs = logs.crash()
	g = newGroupT(t, logs.stream, opts(logs))
	want := Stats{Pending: 4, Unloaded: 4, Lag: 14, Cursor: 10, Floor: 3}
	if s := g.Stats(); s != want {
		t.Fatalf("after the crash:\n got %+v\nwant %+v", s, want)
	}
	b := joinT(t, g, "b", 100)
	ds = nextT(t, b, 0)
	wantOffs := []uint64{3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	wantAttempts := []int{3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	if !slices.Equal(offsets(ds), wantOffs) || !slices.Equal(attempts(ds), wantAttempts) {
		t.Fatalf("after the crash got %v %v", offsets(ds), attempts(ds))
	}
	if string(ds[0].Payload) != "rec-3" {
		t.Fatalf("payload %q", ds[0].Payload)
	}
	// Record 3 had its third and last attempt: a nack dead-letters it.
	if err := b.Nack(context.Background(), 3, 0); err != nil {
		t.Fatal(err)
	}
	if got := dl.got(); len(got) != 1 || got[0].off != 3 || got[0].attempts != 3 {
		t.Fatalf("dead letters %+v", got)
	}
	ackT(t, b, wantOffs[1:]...)

	logs = logs.crash()
	g = newGroupT(t, logs.stream, opts(logs))
	if s := g.Stats(); s != (Stats{Cursor: 20, Floor: 20}) {
		t.Fatalf("after acking everything and a crash: %+v", s)
	}
	fill(t, logs.stream, 1)
	c := joinT(t, g, "c", 0)
	if ds := nextT(t, c, 0); !slices.Equal(offsets(ds), []uint64{20}) {
		t.Fatalf("new record after restart: %v", offsets(ds))
	}
	if err := g.Close(); err != nil { // writes the delivery of 20
		t.Fatal(err)
	}
	logs = logs.crash()
	g = newGroupT(t, logs.stream, opts(logs))
	if ds := nextT(t, joinT(t, g, "d", 0), 0); !slices.Equal(attempts(ds), []int{2}) {
		t.Fatalf("after Close and restart: %v %v", offsets(ds), attempts(ds))
	}
}

// Concurrent members ack through a durable state log that snapshots
// often; after a crash exactly the records not acked come back, and the
// replay reads only the records since the last snapshot.
func TestDurableConcurrentAcksAndSnapshots(t *testing.T) {
	const n, every = 5000, 16
	stream := memStream(t, n)
	state := commitlog.NewMemory(1<<20, 1<<30)
	clock := newFakeClock()
	opts := Options{Clock: clock, StateLog: state, SnapshotEvery: every, ReadBatch: 50}
	g := newGroupT(t, stream, opts)
	keep := func(off uint64) bool { return off%97 == 0 } // never acked

	var seen atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i, prefetch := range []int{1, 3, 64, 200} {
		m := joinT(t, g, string(rune('a'+i)), prefetch)
		wg.Go(func() {
			consume(ctx, t, m, 0, func(ds []Delivery) {
				var acks []uint64
				for _, d := range ds {
					if !keep(d.Offset) {
						acks = append(acks, d.Offset)
					}
				}
				if len(acks) > 0 {
					ackT(t, m, acks...)
				}
				if seen.Add(int64(len(ds))) == n {
					cancel()
				}
			})
		})
	}
	wg.Wait()
	g.Tick(clock.Now()) // writes the attempt counts no ack carried
	var kept []uint64
	for off := uint64(0); off < n; off++ {
		if keep(off) {
			kept = append(kept, off)
		}
	}

	r, err := replayState("g", state, stream.Next())
	if err != nil {
		t.Fatal(err)
	}
	if r.records > every+4 { // a few may land while a snapshot is written
		t.Fatalf("replayed %d records after the snapshot, SnapshotEvery %d", r.records, every)
	}
	g2 := newGroupT(t, stream, opts) // the crash: g is abandoned
	want := Stats{Pending: len(kept), Unloaded: len(kept), Lag: uint64(len(kept)), Cursor: n, Floor: 0}
	if s := g2.Stats(); s != want {
		t.Fatalf("after the crash:\n got %+v\nwant %+v", s, want)
	}
	ds := nextT(t, joinT(t, g2, "x", 1000), 0)
	if !slices.Equal(offsets(ds), kept) {
		t.Fatalf("redelivered %v, want %v", offsets(ds), kept)
	}
	for _, d := range ds {
		if d.Attempt != 2 {
			t.Fatalf("offset %d attempt %d, want 2", d.Offset, d.Attempt)
		}
	}
}

// A state log is refused for another group's name; a state log that is
// ahead of its stream (a stream that lost its tail) is cut back to it.
func TestDurableStateMismatch(t *testing.T) {
	stream := memStream(t, 10)
	state := commitlog.NewMemory(0, 0)
	g := newGroupT(t, stream, Options{StateLog: state, Clock: newFakeClock()})
	m := joinT(t, g, "m", 0)
	ds := nextT(t, m, 6)
	ackT(t, m, 0, 1, 2, 4)

	if _, err := NewGroup("other", stream, Options{StateLog: state}); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("other group's state: %v", err)
	}
	short := commitlog.NewMemory(0, 0)
	fill(t, short, 4) // only 0..3 survived
	g2, err := NewGroup("g", short, Options{StateLog: state, Clock: newFakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	if s := g2.Stats(); s != (Stats{Pending: 1, Unloaded: 1, Lag: 1, Cursor: 4, Floor: 3}) {
		t.Fatalf("cut back: %+v (delivered %v)", s, offsets(ds))
	}
	bad := commitlog.NewMemory(0, 0)
	bad.Append(context.Background(), [][]byte{{9, 9}})
	var cse *CorruptStateError
	if _, err := NewGroup("g", stream, Options{StateLog: bad}); !errors.As(err, &cse) || cse.Offset != 0 {
		t.Fatalf("garbage state: %v", err)
	}
}

// A failing state log makes Ack fail (and count), not hang or panic.
func TestDurableStateLogFailure(t *testing.T) {
	stream := memStream(t, 2)
	state := commitlog.NewMemory(0, 0)
	g := newGroupT(t, stream, Options{StateLog: state, Clock: newFakeClock()})
	m := joinT(t, g, "m", 0)
	nextT(t, m, 0)
	state.Close()
	if err := m.Ack(context.Background(), 0); !errors.Is(err, commitlog.ErrClosed) {
		t.Fatalf("Ack with a closed state log: %v", err)
	}
	err := m.Ack(context.Background(), 0, 1)
	if !errors.Is(err, commitlog.ErrClosed) || !errors.Is(err, ErrNotInFlight) {
		t.Fatalf("Ack of a done and a live offset: %v", err)
	}
	if s := g.Stats(); s.StateErrors != 2 || s.Acked != 2 {
		t.Fatalf("stats: %+v", s)
	}
}

// A record that had used its last attempt when the group crashed is
// dead-lettered by the first Tick after the restart.
func TestDurableExhaustedAtRestart(t *testing.T) {
	stream := memStream(t, 2)
	state := commitlog.NewMemory(0, 0)
	clock := newFakeClock()
	dl := &deadLetters{}
	opts := Options{StateLog: state, Clock: clock, MaxAttempts: 1, DeadLetter: dl.fn}
	g := newGroupT(t, stream, opts)
	nextT(t, joinT(t, g, "m", 0), 0)
	g.Tick(clock.Now()) // writes the attempt counts

	g = newGroupT(t, stream, opts)
	if s := g.Stats(); s.Pending != 2 || s.Lag != 2 {
		t.Fatalf("after the restart: %+v", s)
	}
	g.Tick(clock.Now())
	want := []deadCall{{0, "rec-0", 1, "max attempts (1) exceeded: pending at restart"},
		{1, "rec-1", 1, "max attempts (1) exceeded: pending at restart"}}
	if got := dl.got(); !slices.Equal(got, want) {
		t.Fatalf("dead letters %+v", got)
	}
	g = newGroupT(t, stream, opts) // the dead letters are durable
	if s := g.Stats(); s != (Stats{Cursor: 2, Floor: 2}) {
		t.Fatalf("after dead letters and a restart: %+v", s)
	}
}

// Pending records the stream dropped (its retention) before the restart
// are skipped and counted as lost.
func TestDurableRestartAfterStreamRetention(t *testing.T) {
	stream := commitlog.NewMemory(4, 0)
	fill(t, stream, 4)
	state := commitlog.NewMemory(0, 0)
	opts := Options{StateLog: state, Clock: newFakeClock()}
	g := newGroupT(t, stream, opts)
	m := joinT(t, g, "m", 3)
	nextT(t, m, 0) // 0 1 2
	ackT(t, m, 1)
	fill(t, stream, 2) // drops 0 and 1
	g = newGroupT(t, stream, opts)
	if s := g.Stats(); s != (Stats{Pending: 1, Unloaded: 1, Lag: 4, Lost: 1, Cursor: 3, Floor: 2}) {
		t.Fatalf("after the restart: %+v", s)
	}
	ds := nextT(t, joinT(t, g, "m", 0), 0)
	if !slices.Equal(offsets(ds), []uint64{2, 3, 4, 5}) || !slices.Equal(attempts(ds), []int{2, 1, 1, 1}) {
		t.Fatalf("after the restart: %v %v", offsets(ds), attempts(ds))
	}
}

// A long-running group's state log stays bounded: after each snapshot the
// segments wholly before it are deleted, and a restart from the truncated
// log rebuilds the same state.
func TestDurableStateLogStaysBounded(t *testing.T) {
	const n = 3000
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stateOpts := commitlog.Options{Sync: commitlog.SyncAlways, SegmentBytes: 4096, Logger: quiet}
	state, err := commitlog.Open(dir, stateOpts)
	if err != nil {
		t.Fatal(err)
	}
	stream := memStream(t, n)
	clock := newFakeClock()
	opts := Options{Clock: clock, StateLog: state, SnapshotEvery: 8}
	g := newGroupT(t, stream, opts)
	m := joinT(t, g, "a", 10)
	for acked := 0; acked < n-1; {
		for _, d := range nextT(t, m, 0) {
			if d.Offset == 1234 {
				continue // kept in flight: must survive the truncations
			}
			ackT(t, m, d.Offset) // one state record per ack
			acked++
		}
	}
	if state.Oldest() == 0 {
		t.Fatalf("state log never truncated: %d records from 0", state.Next())
	}
	if kept := state.Next() - state.Oldest(); kept > state.Next()/4 {
		t.Fatalf("state log keeps %d of %d records", kept, state.Next())
	}
	if s := g.Stats(); s.StateErrors != 0 {
		t.Fatalf("state errors: %d", s.StateErrors)
	}
	// Restart from the truncated log (g is abandoned, as in a crash).
	state.Close()
	state2, err := commitlog.Open(dir, stateOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer state2.Close()
	opts.StateLog = state2
	g2 := newGroupT(t, stream, opts)
	if s := g2.Stats(); s.Pending != 1 || s.Cursor != n {
		t.Fatalf("after restart: %+v", s)
	}
	ds := nextT(t, joinT(t, g2, "b", 10), 0)
	if len(ds) != 1 || ds[0].Offset != 1234 {
		t.Fatalf("redelivered %v, want [1234]", offsets(ds))
	}
}
