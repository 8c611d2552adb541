package diskfree

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeDisk is a file system whose free space a test sets, and a ticker the
// test fires: each look after Start happens when the test calls step.
type fakeDisk struct {
	free  atomic.Int64
	fail  atomic.Bool
	looks atomic.Int64

	mu      sync.Mutex
	asked   *sync.Cond
	waits   []time.Duration // the intervals the guard asked for
	pending chan time.Time  // the tick the guard waits for
}

func newFakeDisk(free int64) *fakeDisk {
	d := &fakeDisk{}
	d.asked = sync.NewCond(&d.mu)
	d.free.Store(free)
	return d
}

func (d *fakeDisk) Free(string) (uint64, error) {
	d.looks.Add(1)
	if d.fail.Load() {
		return 0, errors.New("input/output error")
	}
	return uint64(d.free.Load()), nil
}

func (d *fakeDisk) Tick(w time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	d.mu.Lock()
	d.waits = append(d.waits, w)
	d.pending = c
	d.asked.Broadcast()
	d.mu.Unlock()
	return c
}

// step fires the guard's pending tick and waits until its look is done
// (the guard asks for its next tick only after looking).
func (d *fakeDisk) step(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.pending == nil {
		d.asked.Wait()
	}
	n := len(d.waits)
	d.pending <- time.Time{}
	d.pending = nil
	for len(d.waits) == n {
		d.asked.Wait()
	}
}

func (d *fakeDisk) lastWait() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waits[len(d.waits)-1]
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, d *fakeDisk, limit int64) *Guard {
	t.Helper()
	g, err := Start(Options{Dir: "/data", Limit: limit, Interval: time.Second, Free: d.Free, Tick: d.Tick, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func TestAlarmRaisesAndClears(t *testing.T) {
	const limit = 100 << 20
	d := newFakeDisk(1 << 30)
	g := start(t, d, limit)
	if err := g.Check(); err != nil {
		t.Fatalf("1 GiB free: %v", err)
	}

	d.free.Store(limit - 1)
	d.step(t)
	err := g.Check()
	var low *LowSpaceError
	if !errors.As(err, &low) || low.Free != limit-1 || low.Limit != limit {
		t.Fatalf("below the limit: Check = %v, want a LowSpaceError with free %d limit %d", err, limit-1, limit)
	}
	if want := "free disk space 100.0 MiB is below the broker's limit of 100.0 MiB (--disk-free-limit)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	g.Check()
	st := g.Stats()
	if !st.Low || st.Refused != 2 || st.Alarms != 1 || st.Free != limit-1 || st.Limit != limit {
		t.Errorf("stats %+v, want low, 2 refused, 1 alarm", st)
	}

	// Exactly the limit is enough.
	d.free.Store(limit)
	d.step(t)
	if err := g.Check(); err != nil {
		t.Fatalf("free space back at the limit: %v", err)
	}
	if st := g.Stats(); st.Low || st.Refused != 2 || st.Alarms != 1 {
		t.Errorf("after clearing: %+v", st)
	}
}

func TestLowAtStartRefusesAtOnce(t *testing.T) {
	d := newFakeDisk(10)
	g := start(t, d, 1000)
	if err := g.Check(); err == nil {
		t.Fatal("10 bytes free at start, limit 1000: Check passed")
	}
	if st := g.Stats(); st.Alarms != 1 {
		t.Errorf("alarms %d, want 1", st.Alarms)
	}
}

// A look that fails keeps the last state: it neither raises nor clears.
func TestFailedLookKeepsState(t *testing.T) {
	d := newFakeDisk(10)
	g := start(t, d, 1000)
	d.fail.Store(true)
	d.free.Store(1 << 30)
	d.step(t)
	if err := g.Check(); err == nil {
		t.Fatal("a failed look cleared the alarm")
	}
	if st := g.Stats(); st.LookErrs != 1 {
		t.Errorf("look errors %d, want 1", st.LookErrs)
	}
	d.fail.Store(false)
	d.step(t)
	if err := g.Check(); err != nil {
		t.Fatalf("after a good look with room: %v", err)
	}
}

// Close to the floor the guard looks more often.
func TestLooksMoreOftenNearTheFloor(t *testing.T) {
	d := newFakeDisk(1 << 30)
	start(t, d, 1<<20)
	d.step(t)
	if w := d.lastWait(); w != time.Second {
		t.Errorf("far from the floor: waits %v, want 1s", w)
	}
	d.free.Store(3 << 20)
	d.step(t)
	if w := d.lastWait(); w != time.Second/nearFactor {
		t.Errorf("within %d limits of the floor: waits %v, want %v", nearFactor, w, time.Second/nearFactor)
	}
}

func TestStartFailsOnUnreadableDir(t *testing.T) {
	d := newFakeDisk(0)
	d.fail.Store(true)
	if _, err := Start(Options{Dir: "/data", Free: d.Free, Tick: d.Tick, Logger: quiet()}); err == nil {
		t.Fatal("Start on a file system it cannot read succeeded")
	}
}

func TestOffAndNil(t *testing.T) {
	d := newFakeDisk(0)
	g, err := Start(Options{Dir: "/data", Limit: -1, Free: d.Free, Tick: d.Tick})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Check(); err != nil || d.looks.Load() != 0 {
		t.Fatalf("guard off: Check %v, %d looks; want nil and none", err, d.looks.Load())
	}
	var none *Guard
	if err := none.Check(); err != nil {
		t.Fatal(err)
	}
	none.Close()
	if st := none.Stats(); st.Limit != 0 {
		t.Errorf("nil guard stats %+v", st)
	}
}

// The operating system's reading of a real directory is a number of
// bytes, and a default guard on it starts and stops.
func TestRealDirectory(t *testing.T) {
	dir := t.TempDir()
	n, err := osFree(dir)
	if errors.Is(err, errUnsupported) {
		t.Skip("no statfs on this platform")
	}
	if err != nil || n == 0 {
		t.Fatalf("osFree(%s) = %d, %v", dir, n, err)
	}
	g, err := Start(Options{Dir: dir, Limit: 1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Check(); err != nil {
		t.Fatalf("limit 1 byte: %v", err)
	}
	if st := g.Stats(); st.Free <= 0 {
		t.Errorf("free %d", st.Free)
	}
	if _, err := Start(Options{Dir: dir + "/missing", Logger: quiet()}); err == nil {
		t.Error("a missing directory started")
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 50 << 20: "50.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
