package diskfree

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A limit so large that four limits overflow int64 still counts as near
// the floor (the free space is below it): the guard looks four times as
// often, as for any limit above the free space. Before the fix, 4*limit
// wrapped around (to 0 for 1<<62, to -4 for MaxInt64) and the guard
// looked at the slow interval while in alarm.
func TestHunt9HugeLimitLooksOftenWithoutOverflow(t *testing.T) {
	for _, limit := range []int64{1 << 62, 1<<62 + 1, math.MaxInt64 / 2, math.MaxInt64} {
		d := newFakeDisk(1 << 40)
		g := start(t, d, limit)
		if err := g.Check(); err == nil {
			t.Fatalf("limit %d, 1 TiB free: Check passed", limit)
		}
		d.step(t)
		if w := d.lastWait(); w != time.Second/nearFactor {
			t.Errorf("limit %d, 1 TiB free (below it): waits %v, want %v", limit, w, time.Second/nearFactor)
		}
		g.Close()
	}
	// Far above a small limit: the slow interval.
	d := newFakeDisk(math.MaxInt64)
	start(t, d, 1)
	d.step(t)
	if w := d.lastWait(); w != time.Second {
		t.Errorf("MaxInt64 free, limit 1: waits %v, want 1s", w)
	}
}

// The zero Limit is DefaultLimit (the package's documented default; the
// broker's --disk-free-limit 0 starts no guard at all); a free space
// reading beyond int64 (a huge or bogus statfs answer) is clamped, not
// taken for a negative number and an alarm.
func TestHunt9ZeroLimitAndHugeFreeReading(t *testing.T) {
	d := newFakeDisk(DefaultLimit - 1)
	g := start(t, d, 0)
	var low *LowSpaceError
	if err := g.Check(); !errors.As(err, &low) || low.Limit != DefaultLimit {
		t.Fatalf("limit 0, %d free: Check = %v, want the default limit's refusal", DefaultLimit-1, err)
	}
	if st := g.Stats(); st.Limit != DefaultLimit {
		t.Fatalf("stats %+v", st)
	}
	huge := &hugeDisk{fakeDisk: newFakeDisk(0)}
	g2, err := Start(Options{Dir: "/data", Limit: math.MaxInt64, Free: huge.Free, Tick: huge.Tick, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if err := g2.Check(); err != nil {
		t.Fatalf("MaxUint64 bytes free, limit MaxInt64: %v", err)
	}
	if st := g2.Stats(); st.Free != math.MaxInt64 || st.Low {
		t.Fatalf("stats %+v, want free clamped to MaxInt64", st)
	}
}

// hugeDisk answers the largest reading a uint64 holds.
type hugeDisk struct{ *fakeDisk }

func (h *hugeDisk) Free(string) (uint64, error) { return math.MaxUint64, nil }

// Check, called on every publish while the watch flips the alarm on and
// off, answers consistently: a refusal always reports a free space below
// the limit (never "free 1.0 GiB is below the limit of 1.0 KiB"), and a
// failed look (statfs error) between them changes nothing. Before the
// fix Check read the alarm and the free space in two loads, and could
// pair an old alarm with a new reading.
func TestHunt9CheckConsistentWhileFlapping(t *testing.T) {
	const limit = 1 << 10
	d := newFakeDisk(1 << 30)
	g := start(t, d, limit)
	var stop atomic.Bool
	var bad atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				var low *LowSpaceError
				if err := g.Check(); err != nil && (!errors.As(err, &low) || low.Free >= low.Limit) {
					bad.Store(err.Error())
				}
			}
		})
	}
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 20000 && time.Now().Before(deadline) && bad.Load() == nil; i++ {
		switch i % 5 {
		case 0, 2:
			d.free.Store(limit - 1)
		case 1, 3:
			d.free.Store(1 << 30)
		case 4:
			d.fail.Store(true)
		}
		d.step(t)
		d.fail.Store(false)
	}
	stop.Store(true)
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		t.Fatalf("inconsistent refusal: %s", msg)
	}
	if st := g.Stats(); st.LookErrs == 0 || st.Alarms == 0 {
		t.Fatalf("stats %+v: the test meant looks to fail and alarms to flap", st)
	}
}
