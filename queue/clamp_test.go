package queue

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// olderStream opens a new stream log in dir holding n records with the
// payloads fill gives the first n records of any stream: an older copy of
// a stream's log (or the log after a crash lost its tail).
func olderStream(t *testing.T, dir string, n int) *commitlog.DiskLog {
	t.Helper()
	l, err := commitlog.Open(dir, commitlog.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fill(t, l, n)
	return l
}

// A group delivered 0..9 and acked some of them; its stream then goes
// back to 5 records, and 3 new ones are appended before the group opens
// again. ClampState, called before the appends, keeps them: the group
// redelivers its pending offsets below 5 and delivers 5, 6, 7 as new.
// Without it the group opened with its cursor at 10 clamped to the end
// of then (8): 5, 6 and 7 counted as delivered and were never delivered.
// Both shapes of state are clamped: ops after the first snapshot, and a
// last snapshot beyond the end (with pending offsets beyond it).
func TestClampStateKeepsRecordsAppendedBeforeTheGroupOpens(t *testing.T) {
	for _, every := range []int{0, 1} {
		t.Run(map[int]string{0: "ops", 1: "snapshots"}[every], func(t *testing.T) {
			dir := t.TempDir()
			logs := openDiskLogs(t, dir)
			fill(t, logs.stream, 10)
			clock := newFakeClock()
			opts := Options{Clock: clock, AckTimeout: time.Minute, SnapshotEvery: every}
			opts.StateLog = logs.state
			g := newGroupT(t, logs.stream, opts)
			a := joinT(t, g, "a", 10)
			if got := offsets(nextT(t, a, 10)); len(got) != 10 {
				t.Fatalf("delivered %v, want 0..9", got)
			}
			ackT(t, a, 0, 1, 3, 5, 6, 8) // 2, 4, 7, 9 stay pending
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}

			stream := olderStream(t, filepath.Join(dir, "older"), 5)
			before := logs.state.Next()
			got, err := ClampState(logs.state, stream.Next())
			if err != nil {
				t.Fatal(err)
			}
			if want := (ClampedState{Group: "g", Cursor: 10, Clamped: true}); got != want {
				t.Fatalf("ClampState = %+v, want %+v", got, want)
			}
			if logs.state.Next() != before+1 {
				t.Fatalf("state log grew by %d records, want one snapshot", logs.state.Next()-before)
			}
			again, err := ClampState(logs.state, stream.Next())
			if err != nil || again.Clamped || again.Cursor != 5 || logs.state.Next() != before+1 {
				t.Fatalf("ClampState again = %+v, %v (state log at %d), want cursor 5, nothing written", again, err, logs.state.Next())
			}

			fill(t, stream, 3) // 5, 6, 7
			g = newGroupT(t, stream, opts)
			defer g.Close()
			b := joinT(t, g, "b", 10)
			ds := nextT(t, b, 10)
			if !slices.Equal(offsets(ds), []uint64{2, 4, 5, 6, 7}) || !slices.Equal(attempts(ds), []int{2, 2, 1, 1, 1}) {
				t.Fatalf("after the clamp delivered %v attempts %v, want 2 4 (again) then 5 6 7", offsets(ds), attempts(ds))
			}
			if s := g.Stats(); s.Lost != 0 {
				t.Fatalf("lost %d, want 0", s.Lost)
			}
		})
	}
}

// A state within the stream's end (the usual restart), and an empty state
// log (a group made but never written), are not written to.
func TestClampStateWithinTheEndWritesNothing(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	if got, err := ClampState(logs.state, 0); err != nil || got != (ClampedState{}) || logs.state.Next() != 0 {
		t.Fatalf("empty state log: %+v, %v, state log at %d; want nothing", got, err, logs.state.Next())
	}
	fill(t, logs.stream, 6)
	g := newGroupT(t, logs.stream, Options{Clock: newFakeClock(), StateLog: logs.state})
	a := joinT(t, g, "a", 4)
	nextT(t, a, 4)
	ackT(t, a, 0, 1)
	g.Close()
	before := logs.state.Next()
	for _, end := range []uint64{4, 6} {
		got, err := ClampState(logs.state, end)
		if want := (ClampedState{Group: "g", Cursor: 4}); err != nil || got != want || logs.state.Next() != before {
			t.Fatalf("end %d: %+v, %v, state log %d→%d; want %+v and nothing written", end, got, err, before, logs.state.Next(), want)
		}
	}
}

// A state log that does not decode is reported as NewGroup reports it,
// and left as it is.
func TestClampStateCorrupt(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	if _, err := logs.state.Append(t.Context(), [][]byte{{9, 9}}); err != nil {
		t.Fatal(err)
	}
	_, err := ClampState(logs.state, 0)
	if !errors.Is(err, ErrCorruptState) || logs.state.Next() != 1 {
		t.Fatalf("err %v, state log at %d; want ErrCorruptState and nothing written", err, logs.state.Next())
	}
}
