package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// An Ack carries the attempt count of another member's delivery not yet
// in the state log. Right after the Ack has released the group's lock,
// that member leaves without having seen the delivery (its count goes
// back down) and the group closes, writing the lowered count in its
// snapshot. The Ack's record, whose content was decided before, must not
// land after that snapshot with the higher count: after a clean restart
// the record comes back at the attempt it would have had without the
// unseen delivery.
func TestAckRecordNotAfterCloseSnapshot(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 2)
	clock := newFakeClock()
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: time.Hour, MaxAttempts: 5}
	}
	g := newGroupT(t, logs.stream, opts(logs))
	a := joinT(t, g, "a", 1)
	b := joinT(t, g, "b", 1)
	if got := offsets(nextT(t, b, 0)); !slices.Equal(got, []uint64{0}) { // attempt 1, not written yet
		t.Fatalf("b got %v", got)
	}
	if got := offsets(nextT(t, a, 0)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("a got %v", got)
	}
	var once sync.Once
	g.hooks.ackUnlocked = func() {
		once.Do(func() {
			b.LeaveSeen() // 0 was never seen: its count goes back to 0
			if err := g.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	ackT(t, a, 1) // its record carries 0's first attempt

	logs = logs.crash() // the group is closed: a clean restart
	g2 := newGroupT(t, logs.stream, opts(logs))
	defer g2.Close()
	ds := nextT(t, joinT(t, g2, "c", 0), 0)
	if !slices.Equal(offsets(ds), []uint64{0}) || ds[0].Attempt != 1 {
		t.Fatalf("after the restart %v at attempts %v, want 0 at attempt 1 (its one delivery was never seen)", offsets(ds), attempts(ds))
	}
}

// The broker shuts down while a Tick is inside a dead letter's publish:
// the owner closes the group, then its state log (the server's
// queues.close). Close waits for the dead-lettering in progress and
// writes after its record, so the record, dead-lettered once, is done
// after the restart and not dead-lettered a second time.
func TestCloseWaitsForTickDeadLetter(t *testing.T) {
	logs, clock, dl, opts, g, ticked := tickIntoHeldDeadLetter(t)
	waiting := make(chan struct{})
	var once sync.Once
	g.hooks.closeWaits = func() { once.Do(func() { close(waiting) }) }
	closed := make(chan error, 1)
	go func() {
		err := g.Close()
		closed <- errors.Join(err, logs.state.Close()) // the owner closes the state log after the group
	}()
	select {
	case <-waiting: // Close waits for the dead letter
	case err := <-closed: // Close returned during the dead letter
		closed <- err
	}
	close(dl.release)
	<-ticked
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}

	g2 := restartTicked(t, logs, opts, clock.Now())
	if got := dl.got(); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("dead letters for %v, want [0]: once", got)
	}
	if s := g2.Stats(); s.Pending != 0 || s.Lag != 0 {
		t.Fatalf("after the restart: %+v", s)
	}
}

// Close does not wait for a dead letter held up for good (a publish to a
// dead-letter stream whose subscriber under the block policy stopped
// reading): it cancels the DeadLetter call's context. The record, not
// dead-lettered, is dead-lettered after the restart, once.
func TestCloseCancelsDeadLetterInProgress(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 1)
	clock := newFakeClock()
	entered := make(chan struct{})
	var mu sync.Mutex
	var reasons []string
	dl := func(ctx context.Context, rec commitlog.Record, _ int, reason string) error {
		if entered != nil {
			close(entered)
			entered = nil
			<-ctx.Done() // held up until the group closes
			return ctx.Err()
		}
		mu.Lock()
		reasons = append(reasons, reason)
		mu.Unlock()
		return nil
	}
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: time.Second, MaxAttempts: 1, DeadLetter: dl}
	}
	g := newGroupT(t, logs.stream, opts(logs))
	nextT(t, joinT(t, g, "a", 1), 0)
	wait := entered
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		g.Tick(clock.Advance(2 * time.Second))
	}()
	<-wait
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-ticked

	restartTicked(t, logs, opts, clock.Now())
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(reasons, []string{"max attempts (1) exceeded: pending at restart"}) {
		t.Fatalf("dead letters %q, want one, pending at restart", reasons)
	}
}

// restartTicked opens the logs again (the group was closed: a clean
// restart), ticks a new group over them once and returns it; it is
// closed at the end of the test.
func restartTicked(t *testing.T, logs *diskLogs, opts func(*diskLogs) Options, now time.Time) *Group {
	t.Helper()
	logs = logs.crash()
	g := newGroupT(t, logs.stream, opts(logs))
	t.Cleanup(func() { g.Close() })
	g.Tick(now)
	return g
}

// heldDeadLetter is a DeadLetter func whose first call, a publish under
// way, closes entered and returns only once release is closed (whatever
// its context); every call that returns records its offset.
type heldDeadLetter struct {
	entered, release chan struct{}
	first            sync.Once
	mu               sync.Mutex
	calls            []uint64
}

func newHeldDeadLetter() *heldDeadLetter {
	return &heldDeadLetter{entered: make(chan struct{}), release: make(chan struct{})}
}

func (d *heldDeadLetter) fn(_ context.Context, rec commitlog.Record, _ int, _ string) error {
	d.first.Do(func() {
		close(d.entered)
		<-d.release
	})
	d.mu.Lock()
	d.calls = append(d.calls, rec.Offset)
	d.mu.Unlock()
	return nil
}

func (d *heldDeadLetter) got() []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// tickIntoHeldDeadLetter makes a durable group whose one record, delivered
// once, times out at its last attempt in a Tick (run in a goroutine; ticked
// is closed when it returns) and returns once the Tick is inside the
// record's dead letter, held until dl.release is closed.
func tickIntoHeldDeadLetter(t *testing.T) (logs *diskLogs, clock *fakeClock, dl *heldDeadLetter, opts func(*diskLogs) Options, g *Group, ticked chan struct{}) {
	t.Helper()
	logs = openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 1)
	clock = newFakeClock()
	dl = newHeldDeadLetter()
	opts = func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: time.Second, MaxAttempts: 1, DeadLetter: dl.fn}
	}
	g = newGroupT(t, logs.stream, opts(logs))
	if got := offsets(nextT(t, joinT(t, g, "a", 1), 0)); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("a got %v", got)
	}
	ticked = make(chan struct{})
	go func() {
		defer close(ticked)
		g.Tick(clock.Advance(2 * time.Second)) // 0 times out at its last attempt
	}()
	<-dl.entered
	return logs, clock, dl, opts, g, ticked
}
