package queue

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// Close does not wait forever for a DeadLetter func that ignores its
// context (a publish stuck where no context reaches): after
// Options.CloseDeadLetterWait (default 5s; fake time here) it gives up,
// counts the record in Stats.DeadLettersAbandoned and returns, leaving
// the record pending in its final state. The abandoned call, when it
// returns at last (with success), changes nothing: no state record after
// Close (in a log still open, or one the owner closed), no counter. After
// a restart the record is dead-lettered again: at-least-once. Before,
// Close waited for the call forever (here: synctest reports the deadlock).
func TestCloseGivesUpOnStuckDeadLetter(t *testing.T) {
	for _, ownerCloses := range []bool{false, true} {
		t.Run(map[bool]string{false: "log-open", true: "log-closed"}[ownerCloses], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs, clock, dl, opts, g, ticked := tickIntoHeldDeadLetter(t)
				start := time.Now()
				if err := g.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if waited := time.Since(start); waited < DefaultCloseDeadLetterWait {
					t.Fatalf("Close returned after %v, before CloseDeadLetterWait (%v)", waited, DefaultCloseDeadLetterWait)
				}
				s := g.Stats()
				if s.DeadLettersAbandoned != 1 || s.DeadLettered != 0 || s.Pending != 1 || s.StateErrors != 0 {
					t.Fatalf("after Close: %+v, want 1 dead letter abandoned, the record pending", s)
				}
				stateEnd := logs.state.Next()
				if ownerCloses {
					logs.state.Close() // what the owner does once Close returns
				}

				close(dl.release) // the stuck call returns, with success
				synctest.Wait()
				select {
				case <-ticked:
				default:
					t.Fatal("the Tick whose DeadLetter call returned has not")
				}
				if got := logs.state.Next(); got != stateEnd {
					t.Fatalf("the state log grew from %d to %d after Close", stateEnd, got)
				}
				if s2 := g.Stats(); s2 != s {
					t.Fatalf("stats changed after Close: %+v, were %+v", s2, s)
				}

				restartTicked(t, logs, opts, clock.Now())
				if got := dl.got(); !slices.Equal(got, []uint64{0, 0}) {
					t.Fatalf("dead letters for %v, want [0 0]: the abandoned one, then again after the restart", got)
				}
			})
		})
	}
}

// A dead-lettering Close gives up on may have had some of its records
// accepted already (a batch: the first call returned, the second is
// stuck). Those are done: Close's final state (a snapshot) says so, and
// after a restart only the abandoned record is dead-lettered again.
func TestCloseGivesUpKeepsAcceptedDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := openDiskLogs(t, t.TempDir())
		fill(t, logs.stream, 2)
		clock := newFakeClock()
		release := make(chan struct{})
		var calls []uint64 // under the group's reap: one call at a time
		stuck := func(_ context.Context, rec commitlog.Record, _ int, _ string) error {
			if rec.Offset == 1 && release != nil {
				<-release // ignores its context
			}
			calls = append(calls, rec.Offset)
			return nil
		}
		opts := func(d *diskLogs) Options {
			return Options{Clock: clock, StateLog: d.state, AckTimeout: time.Second, MaxAttempts: 1, DeadLetter: stuck,
				CloseDeadLetterWait: time.Minute}
		}
		g := newGroupT(t, logs.stream, opts(logs))
		if got := offsets(nextT(t, joinT(t, g, "a", 2), 0)); !slices.Equal(got, []uint64{0, 1}) {
			t.Fatalf("a got %v", got)
		}
		go g.Tick(clock.Advance(2 * time.Second)) // both time out at their last attempt
		synctest.Wait()                           // 0 dead-lettered, 1 stuck
		if err := g.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s := g.Stats(); s.DeadLettersAbandoned != 1 || s.DeadLettered != 1 || s.Pending != 1 {
			t.Fatalf("after Close: %+v, want 1 dead-lettered, 1 abandoned", s)
		}
		close(release)
		synctest.Wait()
		release = nil

		restartTicked(t, logs, opts, clock.Now())
		if !slices.Equal(calls, []uint64{0, 1, 1}) {
			t.Fatalf("dead letters for %v, want [0 1 1]: 0 once, 1 again after the restart", calls)
		}
	})
}
