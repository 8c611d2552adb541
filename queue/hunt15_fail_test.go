package queue

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testwait"
)

// faultyStateLog is a DiskLog whose appends (AppendNoWait, as a full
// disk refuses them) or waits for durability (as after a failed fsync)
// fail while told to.
type faultyStateLog struct {
	*commitlog.DiskLog
	failAppend, failWait atomic.Bool
}

var errInjected = errors.New("injected I/O error")

func (l *faultyStateLog) AppendNoWait(p [][]byte) (uint64, uint64, error) {
	if l.failAppend.Load() {
		return 0, 0, errInjected
	}
	return l.DiskLog.AppendNoWait(p)
}

func (l *faultyStateLog) WaitDurable(ctx context.Context, end uint64) error {
	if l.failWait.Load() {
		return errInjected
	}
	return l.DiskLog.WaitDurable(ctx, end)
}

// State writes that fail, in the append under the lock or in the wait for
// durability after it (a snapshot's too), fail the Ack that made them,
// are counted, and have the next Tick write a snapshot that makes the
// acks durable; Close does not wait for the truncation a failed snapshot
// never does.
func TestStateFailuresSplitLog(t *testing.T) {
	for _, fail := range []string{"append", "wait", "wait-snapshot"} {
		t.Run(fail, func(t *testing.T) {
			logs := openDiskLogs(t, t.TempDir())
			fill(t, logs.stream, 3)
			state := &faultyStateLog{DiskLog: logs.state}
			clock := newFakeClock()
			opts := Options{Clock: clock, StateLog: state, AckTimeout: time.Hour}
			if fail == "wait-snapshot" {
				opts.SnapshotEvery = 1
			}
			g := newGroupT(t, logs.stream, opts)
			m := joinT(t, g, "a", 3)
			nextT(t, m, 0)
			if fail == "append" {
				state.failAppend.Store(true)
			} else {
				state.failWait.Store(true)
			}
			if err := m.Ack(context.Background(), 0); !errors.Is(err, errInjected) {
				t.Fatalf("Ack: %v, want the injected error", err)
			}
			if s := g.Stats(); s.StateErrors != 1 || !g.Due(clock.Now()) {
				t.Fatalf("after the failure: due %v, %+v", g.Due(clock.Now()), s)
			}
			state.failAppend.Store(false)
			state.failWait.Store(false)
			g.Tick(clock.Now()) // the snapshot carries the ack
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				if err := g.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			testwait.Within(t, "Close", closed)
			if s := g.Stats(); s.StateErrors != 1 {
				t.Fatalf("state errors %d, want 1", s.StateErrors)
			}
			logs = logs.crash() // closed: a clean restart
			opts.StateLog = logs.state
			g2 := newGroupT(t, logs.stream, opts)
			defer g2.Close()
			if got := offsets(nextT(t, joinT(t, g2, "b", 3), 0)); !slices.Equal(got, []uint64{1, 2}) {
				t.Fatalf("after the restart %v, want [1 2] (0 was acked)", got)
			}
		})
	}
}
