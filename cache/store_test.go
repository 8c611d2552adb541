package cache

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestStoreRegistry(t *testing.T) {
	st := NewStore(StoreOptions{SweepInterval: -1})
	defer st.Close()

	_, err := st.Get(testScope)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) || nf.Scope != testScope {
		t.Fatalf("Get of an unknown scope: %v", err)
	}
	if err.Error() != "cache scope not found: t1/default/primary" {
		t.Fatalf("message %q is not the reference's", err)
	}

	c, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Scope() != testScope {
		t.Fatalf("Scope() = %v", c.Scope())
	}
	// Same config, spelled with or without defaults: the same cache.
	for _, cfg := range []Config{{}, c.Config(), {Shards: c.Config().Shards}} {
		again, err := st.Create(testScope, cfg)
		if err != nil || again != c {
			t.Fatalf("Create again with %+v: %p,%v; want %p", cfg, again, err, c)
		}
	}
	_, err = st.Create(testScope, Config{MaxBytes: 1 << 20})
	var ce *ConfigConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConfigConflict) || ce.Existing != c.Config() || ce.Requested.MaxBytes != 1<<20 {
		t.Fatalf("Create with another config: %v", err)
	}
	if got, err := st.Get(testScope); err != nil || got != c {
		t.Fatalf("Get = %p,%v; want %p", got, err, c)
	}

	other := Scope{"t1", "default", "other"}
	c2, err := st.Create(other, Config{MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if list := st.Caches(); len(list) != 2 || list[0] != c || list[1] != c2 {
		t.Fatalf("Caches() = %v", list)
	}

	for _, bad := range []Scope{{}, {"t", "", "c"}, {"", "n", "c"}, {"t", "n", ""}} {
		if _, err := st.Create(bad, Config{}); !errors.Is(err, ErrInvalidScope) {
			t.Errorf("Create %+v: %v", bad, err)
		}
	}
	if _, err := st.Create(Scope{"t", "n", "c"}, Config{MaxBytes: -5}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Create with negative MaxBytes: %v", err)
	}

	mustPut(t, c, "k", "v", PutOptions{})
	if err := st.Delete(testScope); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(testScope); !errors.As(err, &nf) {
		t.Fatalf("Delete twice: %v", err)
	}
	if _, err := st.Get(testScope); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	// A retained handle on a deleted cache: empty, refuses writes.
	wantMiss(t, c, "k")
	if _, err := c.Put("k", []byte("v"), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Put on a deleted cache: %v", err)
	}
	if s := c.Stats(); s.Bytes != 0 || s.Entries != 0 {
		t.Fatalf("deleted cache stats %+v", s)
	}
	if list := st.Caches(); len(list) != 1 || list[0] != c2 {
		t.Fatalf("Caches() after Delete = %v", list)
	}
	// Re-creating the scope gives a fresh, empty cache.
	c3, err := st.Create(testScope, Config{})
	if err != nil || c3 == c {
		t.Fatalf("re-Create: %p,%v", c3, err)
	}
	wantMiss(t, c3, "k")

	st.Close()
	st.Close() // idempotent
	if _, err := st.Create(Scope{"t", "n", "late"}, Config{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
	mustPut(t, c2, "still", "works", PutOptions{})
}

func TestSweepFreesExpiredWithoutGets(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	const expiring, keep = 3000, 500
	for i := range expiring {
		mustPut(t, c, fmt.Sprintf("exp-%d", i), "0123456789", PutOptions{TTL: new(time.Duration(i%7+1) * time.Second)})
	}
	for i := range keep {
		mustPut(t, c, fmt.Sprintf("keep-%d", i), "0123456789", PutOptions{})
	}
	var wantKept int64
	for i := range keep {
		wantKept += entrySize(fmt.Sprintf("keep-%d", i), 10)
	}

	if n := c.Sweep(1 << 20); n != 0 {
		t.Fatalf("swept %d entries before any expired", n)
	}
	clk.Advance(7 * time.Second)
	// A bounded sweep removes at most its budget.
	if n := c.Sweep(100); n > 100 {
		t.Fatalf("Sweep(100) removed %d", n)
	}
	for range 1000 {
		if c.Stats().Entries == keep {
			break
		}
		c.Sweep(100)
	}
	st := c.Stats()
	if st.Entries != keep || st.Bytes != wantKept || st.Expirations != expiring {
		t.Fatalf("after sweeping: %+v; want %d entries, %d bytes", st, keep, wantKept)
	}
	if st.Hits != 0 || st.Misses != 0 {
		t.Fatalf("the sweep counted lookups: %+v", st)
	}
	checkInvariants(t, c)
}

func TestStoreSweepSharesBudgetAcrossCaches(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	defer st.Close()
	var caches []*Cache
	for i := range 3 {
		c, err := st.Create(Scope{"t", "n", fmt.Sprint(i)}, Config{Shards: 4})
		if err != nil {
			t.Fatal(err)
		}
		for k := range 1000 {
			mustPut(t, c, fmt.Sprint(k), "v", PutOptions{TTL: new(time.Second)})
		}
		caches = append(caches, c)
	}
	clk.Advance(time.Second)
	total := 0
	for tick := 0; total < 3000; tick++ {
		if tick > 100 {
			t.Fatalf("%d of 3000 removed after 100 ticks", total)
		}
		n := st.Sweep(500)
		if n > 500 {
			t.Fatalf("tick %d removed %d, budget 500", tick, n)
		}
		total += n
	}
	for i, c := range caches {
		if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
			t.Fatalf("cache %d: %+v", i, s)
		}
	}
}

// TestBackgroundSweep runs the Store's own ticker on the real clock inside
// a synctest bubble, where time is virtual.
func TestBackgroundSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := NewStore(StoreOptions{})
		defer st.Close()
		c, err := st.Create(testScope, Config{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range 100 {
			mustPut(t, c, fmt.Sprint(k), "v", PutOptions{TTL: new(1500 * time.Millisecond)})
		}
		mustPut(t, c, "keep", "v", PutOptions{})
		time.Sleep(1100 * time.Millisecond) // one tick: nothing has expired
		synctest.Wait()
		if s := c.Stats(); s.Entries != 101 {
			t.Fatalf("after the first tick: %+v", s)
		}
		time.Sleep(time.Second) // the second tick, at 2s, sweeps
		synctest.Wait()
		if s := c.Stats(); s.Entries != 1 || s.Expirations != 100 || s.Misses != 0 {
			t.Fatalf("after the second tick: %+v", s)
		}
	})
}

// TestBackgroundSweepKeepsUpWithExpiry: when much of what a tick's sweep
// visits has expired, the sweep goes on within the tick, as Redis's active
// expiry does. It used to stop at SweepMaxPerTick slots a tick, so unique
// keys with short TTLs written faster than that (10,000 a second by
// default) piled up expired entries without bound: 776,000 at 65,000 puts
// a second with a 1 s TTL, cleared at 10,000 a second after the writes
// stopped.
func TestBackgroundSweepKeepsUpWithExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := NewStore(StoreOptions{SweepMaxPerTick: 100})
		defer st.Close()
		c, err := st.Create(testScope, Config{})
		if err != nil {
			t.Fatal(err)
		}
		const n = 5000
		for k := range n {
			mustPut(t, c, fmt.Sprint(k), "v", PutOptions{TTL: new(500 * time.Millisecond)})
		}
		mustPut(t, c, "keep", "v", PutOptions{})
		time.Sleep(1100 * time.Millisecond) // one tick, with all but one entry expired
		synctest.Wait()
		if s := c.Stats(); s.Entries != 1 || s.Expirations != n {
			t.Fatalf("one tick after %d entries expired: %+v", n, s)
		}
		time.Sleep(10 * time.Second) // nothing left to expire: a tick visits one budget
		synctest.Wait()
		if s := c.Stats(); s.Entries != 1 || s.Misses != 0 {
			t.Fatalf("later: %+v", s)
		}
	})
}

// TestSweepBudgetBoundsShardVisits: a sweep budget bounds the shards it
// visits too, not only the slots, so a tick's work does not grow with the
// number of caches. A tick used to walk every shard of every cache (16 a
// cache by default) however few entries they held: 10,000 caches of one
// entry cost an idle broker 1.4% of a CPU, a hundred thousand would cost
// 14%.
func TestSweepBudgetBoundsShardVisits(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	defer st.Close()
	const caches = 200
	for i := range caches {
		c, err := st.Create(Scope{"t", "n", fmt.Sprint(i)}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, c, "k", "v", PutOptions{})
	}
	if visited, _ := st.sweep(100); visited > 100 || st.sweepNext >= caches/10 {
		t.Fatalf("a sweep of budget 100 visited %d and went on to cache %d of %d (%d shards each)",
			visited, st.sweepNext, caches, MinDefaultShards)
	}
}

func TestCloseStopsBackgroundSweep(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	st := NewStore(StoreOptions{SweepInterval: time.Millisecond})
	c, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "k", "v", PutOptions{TTL: new(time.Nanosecond)})
	st.Close()
}

// A cache deleted and created again under the same scope (as the control
// plane does) never hands out a version the old one handed out, so a
// compare-and-set with a version read from the old cache cannot match an
// entry of the new one (ABA).
func TestVersionsNeverRepeatAcrossRecreate(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	defer st.Close()
	c, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var old uint64
	for i := range 3 {
		old = mustPut(t, c, "k", "old"+strconv.Itoa(i), PutOptions{})
	}
	if err := st.Delete(testScope); err != nil {
		t.Fatal(err)
	}
	c2, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	for i := range 3 {
		v = mustPut(t, c2, "k", "new"+strconv.Itoa(i), PutOptions{})
		if v <= old {
			t.Fatalf("recreated cache's write %d got version %d, not above the deleted cache's last %d", i, v, old)
		}
	}
	if _, err := c2.Put("k", []byte("stale"), PutOptions{IfVersion: &old}); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("CAS with the deleted cache's version %d: %v", old, err)
	}
	wantGet(t, c2, "k", "new2")
}

// A new Store (a broker restart) starts its versions above those of an
// earlier Store: they follow the clock (microseconds), so a version read
// before a restart does not match an entry written after it.
func TestVersionsNeverRepeatAcrossStores(t *testing.T) {
	clk := newFakeClock()
	var last uint64
	for round := range 3 {
		st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
		c, err := st.Create(testScope, Config{})
		if err != nil {
			t.Fatal(err)
		}
		v := mustPut(t, c, "k", "v", PutOptions{})
		if v <= last {
			t.Fatalf("store %d: first version %d, not above the previous store's %d", round, v, last)
		}
		for range 100 {
			last = mustPut(t, c, "k", "v", PutOptions{})
		}
		st.Close()
		clk.Advance(time.Second) // a restart takes time
	}
}
