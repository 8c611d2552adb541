package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testwait"
)

// A second Close, concurrent with a first one still waiting for a
// dead-lettering in progress, returns only once the first is done: the
// owner closes the state log when Close returns, and the group's final
// state (the dead letter's record, the counts) must be in it by then.
// Before, the second Close returned nil at once; the owner's Close of the
// state log then refused the dead letter's record, and the record was
// dead-lettered again after the restart.
func TestCloseTwiceWaitsForTheFirst(t *testing.T) {
	logs, clock, dl, opts, g, ticked := tickIntoHeldDeadLetter(t)
	waiting := make(chan struct{})
	g.hooks.closeWaits = func() { close(waiting) }
	first := make(chan error, 1)
	go func() { first <- g.Close() }()
	<-waiting // the first Close waits for the dead letter
	second := make(chan error, 1)
	go func() { second <- g.Close() }()
	select {
	case err := <-second:
		close(dl.release)
		t.Fatalf("the second Close returned (%v) while the first waits for the dead letter", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(dl.release)
	testwait.Within(t, "Tick", ticked)
	for _, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(testwait.Liveness):
			t.Fatal("Close hangs")
		}
	}
	logs.state.Close() // what the owner does once Close returns

	restartTicked(t, logs, opts, clock.Now())
	if got := dl.got(); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("dead letters for %v, want [0]: once", got)
	}
}

// The state log is not touched after Close returns: an Ack whose record
// was followed by a snapshot (SnapshotEvery) drops the state-log segments
// before it once the snapshot is durable, outside the group's lock. Close,
// which ran meanwhile, waits for that truncation. Before, the truncation
// ran after Close had returned: it deleted segments of a log the owner
// may have reused, or failed on the log the owner had closed and was
// counted as a state error of a group that had none.
func TestNoStateTruncationAfterClose(t *testing.T) {
	for _, ownerCloses := range []bool{false, true} {
		t.Run(map[bool]string{false: "log-open", true: "log-closed"}[ownerCloses], func(t *testing.T) {
			logs := openDiskLogsWith(t, t.TempDir(), commitlog.Options{Sync: commitlog.SyncAlways, SegmentBytes: 256, RetentionInterval: -1})
			stream, state := logs.stream, logs.state
			const n = 40
			fill(t, stream, n)
			g := newGroupT(t, stream, Options{Clock: newFakeClock(), StateLog: state, AckTimeout: time.Hour, SnapshotEvery: 1000})
			m := joinT(t, g, "a", n)
			nextT(t, m, 0)
			for i := range uint64(n - 1) {
				ackT(t, m, i) // one state record each: several segments
			}
			if state.Oldest() != 0 || state.Stats().Segments < 3 {
				t.Fatalf("state log %d..%d in %d segments: want several, none deleted", state.Oldest(), state.Next(), state.Stats().Segments)
			}
			g.mu.Lock()
			g.state.since = g.state.every // the next record is followed by a snapshot
			g.mu.Unlock()
			var oldest uint64
			closed := make(chan struct{})
			g.hooks.ackUnlocked = func() {
				// Close runs while the Ack has not waited for its record.
				go func() {
					defer close(closed)
					if err := g.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
					oldest = state.Oldest()
					if ownerCloses {
						state.Close()
					}
				}()
				select {
				case <-closed: // Close did not wait for the Ack's truncation
				case <-time.After(20 * time.Millisecond):
				}
			}
			ackT(t, m, n-1)
			testwait.Within(t, "Close", closed)
			if got := state.Oldest(); !ownerCloses && got != oldest {
				t.Fatalf("the state log's oldest moved from %d to %d after Close returned", oldest, got)
			}
			if s := g.Stats(); s.StateErrors != 0 {
				t.Fatalf("%d state errors after a clean Close", s.StateErrors)
			}
		})
	}
}

// readHookLog is a stream that calls hook before a Read from offset at
// or above from (once).
type readHookLog struct {
	commitlog.Log
	from uint64
	once sync.Once
	hook func()
}

func (l *readHookLog) Read(from uint64, maxRecords, maxBytes int) ([]commitlog.Record, error) {
	if from >= l.from {
		l.once.Do(l.hook)
	}
	return l.Log.Read(from, maxRecords, maxBytes)
}

// A Next that has taken deliveries and reads the stream for more (the
// group's lock released) while its member leaves, or the group closes,
// returns ErrMemberLeft or ErrClosed: the deliveries it had taken never
// reach the application, so they must not count as attempts. Before,
// they did: a record nobody saw was dead-lettered (MaxAttempts 1) when
// the member left, and came back one attempt higher after the group
// closed and opened again.
func TestNextDroppedDeliveriesNotCounted(t *testing.T) {
	t.Run("leave", func(t *testing.T) {
		var dead deadLetters
		stream := &readHookLog{Log: memStream(t, 2), from: 1}
		clock := newFakeClock()
		g := newGroupT(t, stream, Options{Clock: clock, ReadBatch: 1, MaxAttempts: 1, DeadLetter: dead.fn})
		defer g.Close()
		m := joinT(t, g, "a", 2)
		stream.hook = m.Leave // while Next reads 1, having taken 0
		if _, err := m.Next(context.Background(), 0); !errors.Is(err, ErrMemberLeft) {
			t.Fatalf("Next: %v, want ErrMemberLeft", err)
		}
		g.Tick(clock.Advance(time.Second))
		if got := dead.got(); len(got) != 0 {
			t.Fatalf("dead letters %+v of records no member saw", got)
		}
		ds := nextT(t, joinT(t, g, "b", 2), 0)
		if !slices.Equal(offsets(ds), []uint64{0, 1}) || !slices.Equal(attempts(ds), []int{1, 1}) {
			t.Fatalf("b got %v at attempts %v, want [0 1] at [1 1]", offsets(ds), attempts(ds))
		}
	})
	t.Run("close", func(t *testing.T) {
		logs := openDiskLogs(t, t.TempDir())
		fill(t, logs.stream, 2)
		clock := newFakeClock()
		stream := &readHookLog{Log: logs.stream, from: 1}
		opts := Options{Clock: clock, ReadBatch: 1, MaxAttempts: 5, StateLog: logs.state}
		g := newGroupT(t, stream, opts)
		m := joinT(t, g, "a", 2)
		stream.hook = func() {
			if err := g.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if _, err := m.Next(context.Background(), 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next: %v, want ErrClosed", err)
		}
		logs = logs.crash() // closed: a clean restart
		opts.StateLog = logs.state
		g2 := newGroupT(t, logs.stream, opts)
		defer g2.Close()
		ds := nextT(t, joinT(t, g2, "b", 2), 0)
		if !slices.Equal(offsets(ds), []uint64{0, 1}) || !slices.Equal(attempts(ds), []int{1, 1}) {
			t.Fatalf("after the restart %v at attempts %v, want [0 1] at [1 1]", offsets(ds), attempts(ds))
		}
	})
}
