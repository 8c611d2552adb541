package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// hunt16Durable creates a durable cache named name in st, its log in a
// directory of its own under dir.
func hunt16Durable(t *testing.T, st *Store, dir, name string, cfg Config) *Cache {
	t.Helper()
	c, err := st.CreateDurable(Scope{"t", "ns", name}, cfg, hunt16Opts(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hunt16Opts(dir, name string) DurableOptions {
	return DurableOptions{Dir: filepath.Join(dir, name), SegmentBytes: 4096, CompactMinBytes: 1 << 30,
		Logger: slog.New(slog.DiscardHandler)}
}

// hunt16Budget returns a Store whose budget holds n entries of value v
// (1,000 bytes), with a durable cache d holding nd of them (k00, k01, …)
// and an in-memory cache m holding nm.
func hunt16Budget(t *testing.T, n, nd, nm int) (st *Store, d, m *Cache, v string) {
	t.Helper()
	v = strings.Repeat("x", 1000)
	st = NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: int64(n) * entrySize("k00", len(v))})
	d = hunt16Durable(t, st, t.TempDir(), "d", Config{})
	m = mustCreate(t, st, "m", Config{})
	for i := range max(nd, nm) {
		k := fmt.Sprintf("k%02d", i)
		if i < nd {
			mustPut(t, d, k, v, PutOptions{})
		}
		if i < nm {
			mustPut(t, m, k, v, PutOptions{})
		}
	}
	return st, d, m, v
}

// within runs f and fails the test if it has not returned in 10 s (a
// write spinning forever).
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never returned", what)
		return nil
	}
}

// A write to an in-memory cache that the budget refuses while the largest
// cache is a durable one whose log refuses the eviction record (a full
// disk) is not failed with that other cache's storage error: the room
// comes from the caches that can give it, the writer's own included.
func TestBudgetVictimLogRefusesEvictsElsewhere(t *testing.T) {
	st, d, m, v := hunt16Budget(t, 10, 6, 2)
	defer st.Close()
	o := mustCreate(t, st, "o", Config{})
	mustPut(t, o, "k00", v, PutOptions{})
	mustPut(t, o, "k01", v, PutOptions{})
	if err := d.dur.log.Close(); err != nil { // its disk is full, say
		t.Fatal(err)
	}
	for i := 2; i < 6; i++ {
		if _, err := m.Put(fmt.Sprintf("k%02d", i), []byte(v), PutOptions{}); err != nil {
			t.Fatalf("Put on an in-memory cache while a durable one's log refuses evictions: %v", err)
		}
		storeBytes(t, st)
	}
	if _, _, err := o.Incr("n", 1, nil); err != nil {
		t.Fatalf("Incr on an in-memory cache while a durable one's log refuses evictions: %v", err)
	}
	if sd := d.Stats(); sd.Entries != 6 {
		t.Fatalf("the durable cache lost entries its log did not record: %+v", sd)
	}
	storeBytes(t, st)
}

// When nothing can be evicted (every other byte is a durable cache's
// whose log refuses), the write fails with a *BudgetFullError, which says
// the cache memory budget is full and matches ErrBudgetFull and
// ErrTooLarge, not ErrStorage: the writer's cache has no storage error.
func TestBudgetFullWhenNothingCanBeEvicted(t *testing.T) {
	st, d, m, v := hunt16Budget(t, 4, 3, 1)
	defer st.Close()
	if err := d.dur.log.Close(); err != nil {
		t.Fatal(err)
	}
	// m's only entry is the key written: nothing of m's to evict either.
	err := within(t, "Put", func() error {
		_, err := m.Put("k00", []byte(v+v), PutOptions{})
		return err
	})
	var be *BudgetFullError
	if !errors.As(err, &be) || !errors.Is(err, ErrBudgetFull) || !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrStorage) {
		t.Fatalf("Put with nothing evictable: %v (%T), want a *BudgetFullError", err, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "budget full") || strings.Contains(msg, "t/ns/d") || be.Cause == nil {
		t.Fatalf("error %q (cause %v): want it to say the budget is full, not to name the other cache, and to keep the cause", msg, be.Cause)
	}
	t.Logf("error: %v", err)
	wantGet(t, m, "k00", v)
	if _, err = m.Put("other", []byte(v), PutOptions{}); !errors.Is(err, ErrBudgetFull) {
		// m's k00 can go for another key.
		if err != nil {
			t.Fatal(err)
		}
	}
	storeBytes(t, st)
}

// After the Store is closed its durable caches' logs are closed, but the
// in-memory caches keep working: their writes evict from themselves
// rather than fail with a durable cache's storage error.
func TestBudgetAfterCloseInMemoryCachesKeepWorking(t *testing.T) {
	st, _, m, v := hunt16Budget(t, 6, 4, 2)
	st.Close()
	for i := 2; i < 5; i++ {
		if _, err := m.Put(fmt.Sprintf("k%02d", i), []byte(v), PutOptions{}); err != nil {
			t.Fatalf("Put on an in-memory cache after Close: %v", err)
		}
	}
	storeBytes(t, st)
}

// A Put that passed the size check and then finds the capacity lowered
// below its entry (a Resize meanwhile) fails with a *TooLargeError; it
// does not evict everything else and then spin forever.
func TestPutAfterResizeBelowItsSizeFails(t *testing.T) {
	st := NewStore(StoreOptions{SweepInterval: -1})
	defer st.Close()
	c := mustCreate(t, st, "c", Config{MaxBytes: 8192})
	mustPut(t, c, "other", "v", PutOptions{})
	s := c.shardFor("k")
	s.mu.Lock() // the Put waits here, after its size check
	done := make(chan error, 1)
	go func() {
		_, err := c.Put("k", make([]byte, 4000), PutOptions{})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := st.Resize(c.Scope(), 2048); err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	s.mu.Unlock()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Put over the lowered capacity: %v, want ErrTooLarge", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Put over the lowered capacity never returned")
	}
	checkInvariants(t, c)
}

// hunt16Model drives a Store with a small budget through random
// operations on a few scopes, in memory and durable (created, replaced
// in either direction, deleted, resized, reloaded under a lower capacity,
// a log whose replay fails), and checks after each one, and at each
// swap before the old cache's entries are dropped, that the budget holds
// exactly the sum of the registered caches' bytes, within its bound
// unless a durable cache was loaded over it.
func hunt16Model(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e37))
	clk := newFakeClock()
	dir := t.TempDir()
	const limit = 24 << 10
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1, MaxTotalBytes: limit})
	defer st.Close()
	// At the swap of a Replace, ReplaceDurable, Delete or DeleteDurable
	// too, before the old cache's entries are dropped, the budget holds
	// the registered caches' bytes: none of the old one's.
	st.dropHook = func(old *Cache) {
		var sum int64
		for _, x := range st.Caches() {
			sum += x.Stats().Bytes
		}
		if used, _ := st.MemoryBytes(); used != sum {
			t.Fatalf("seed %d: dropping %v (%d bytes): budget holds %d, registered caches %d", seed, old.Scope(), old.Stats().Bytes, used, sum)
		}
	}
	names := []string{"a", "b", "c", "d"}
	scope := func(n string) Scope { return Scope{"t", "ns", n} }
	gen := map[string]int{} // a durable cache's log generation (its directory)
	opts := func(n string) DurableOptions {
		return hunt16Opts(dir, fmt.Sprintf("%s.%d", n, gen[n]))
	}
	cfg := func() Config {
		return Config{MaxBytes: []int64{0, 0, 4 << 10, 12 << 10}[rng.IntN(4)], Shards: 4}
	}
	overOK := false // a durable cache was loaded over the bound
	for step := range 400 {
		n := names[rng.IntN(len(names))]
		c, _ := st.Get(scope(n))
		key := fmt.Sprintf("k%d", rng.IntN(40))
		var err error
		switch op := rng.IntN(20); {
		case c == nil || op == 0:
			switch rng.IntN(3) {
			case 0:
				_, err = st.Replace(scope(n), cfg())
			case 1:
				var old *Cache
				if old, _ = st.Get(scope(n)); old != nil && old.Durable() {
					err = st.DeleteDurable(scope(n))
					gen[n]++
				}
				_, err = st.ReplaceDurable(scope(n), cfg(), opts(n))
			default:
				_, err = st.Create(scope(n), cfg())
			}
			if errors.Is(err, ErrDurable) || errors.Is(err, ErrConfigConflict) {
				err = nil
			}
			overOK = true
		case op < 8:
			ttl := time.Duration(rng.IntN(3)-1) * time.Second
			opt := PutOptions{}
			if rng.IntN(3) == 0 {
				opt.TTL = &ttl
			}
			_, err = c.Put(key, make([]byte, rng.IntN(3000)), opt)
		case op < 10:
			_, _, err = c.Incr("n"+key, int64(rng.IntN(1e6)), nil)
		case op < 12:
			_, err = c.Remove(key)
		case op < 13:
			_, _, err = c.Expire(key, time.Duration(1+rng.IntN(2))*time.Second)
		case op < 14:
			_, err = c.Flush()
		case op < 15:
			clk.Advance(time.Second)
			if rng.IntN(2) == 0 {
				st.Sweep(1000)
			}
		case op < 16:
			_, err = st.Resize(scope(n), cfg().MaxBytes)
		case op < 17:
			if c.Durable() {
				err = st.DeleteDurable(scope(n))
				gen[n]++
			} else {
				err = st.Delete(scope(n))
			}
		case op < 18 && c.Durable():
			// Reload under a lower capacity: evictToCapacity at load.
			if err = st.DeleteDurable(scope(n)); err == nil {
				_, err = st.CreateDurable(scope(n), Config{MaxBytes: 2 << 10, Shards: 4}, opts(n))
				overOK = true
			}
		case op < 19:
			// A log whose replay fails registers nothing.
			bad := filepath.Join(dir, fmt.Sprintf("bad%d", step))
			lg, lerr := commitlog.Open(bad, commitlog.Options{Logger: slog.New(slog.DiscardHandler)})
			if lerr != nil {
				t.Fatal(lerr)
			}
			if _, lerr = lg.Append(t.Context(), [][]byte{{9}}); lerr != nil {
				t.Fatal(lerr)
			}
			lg.Close()
			o := hunt16Opts(dir, "")
			o.Dir = bad
			if _, lerr = st.ReplaceDurable(scope("bad"), Config{}, o); lerr == nil {
				t.Fatal("a corrupt log loaded")
			}
		default:
			_, err = c.Put(key, make([]byte, rng.IntN(200)), PutOptions{IfAbsent: rng.IntN(2) == 0})
		}
		if err != nil && !errors.Is(err, ErrConditionFailed) && !errors.Is(err, ErrNotInteger) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("seed %d step %d: %v", seed, step, err)
		}
		var sum int64
		for _, x := range st.Caches() {
			checkInvariants(t, x)
			sum += x.Stats().Bytes
		}
		used, _ := st.MemoryBytes()
		if used != sum {
			t.Fatalf("seed %d step %d: budget holds %d, caches %d", seed, step, used, sum)
		}
		if used > limit && !overOK {
			t.Fatalf("seed %d step %d: budget holds %d over its bound %d", seed, step, used, limit)
		}
		if used <= limit {
			overOK = false
		}
	}
}

func TestHunt16BudgetModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { hunt16Model(t, seed) })
	}
}

// Writers on several caches, some durable, race with the Store's Create,
// Replace, Delete, ReplaceDurable and DeleteDurable of the others: no
// write fails but for the cache having gone, and once quiet the budget
// holds the caches' bytes.
func TestHunt16BudgetConcurrentLifecycle(t *testing.T) {
	const limit = 48 << 10
	dir := t.TempDir()
	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: limit})
	defer st.Close()
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, n := range names {
		mustCreate(t, st, n, Config{Shards: 4})
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				c, err := st.Get(Scope{"t", "ns", names[(w+i)%len(names)]})
				if err != nil {
					continue
				}
				key := fmt.Sprintf("w%d-%d", w, i%200)
				if i%5 == 0 {
					_, _, err = c.Incr(key, 1, nil)
				} else {
					_, err = c.Put(key, make([]byte, 200+i%1500), PutOptions{})
				}
				if err != nil && !errors.Is(err, ErrDeleted) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		for i := range 150 {
			n := names[rng.IntN(len(names))]
			s := Scope{"t", "ns", n}
			var err error
			switch rng.IntN(4) {
			case 0:
				_, err = st.Replace(s, Config{Shards: 4})
			case 1:
				if err = st.DeleteDurable(s); err == nil {
					_, err = st.Create(s, Config{Shards: 4})
				}
			case 2:
				_, err = st.ReplaceDurable(s, Config{Shards: 4}, hunt16Opts(dir, fmt.Sprint(n, i)))
			default:
				_, err = st.Resize(s, int64(rng.IntN(3))*(8<<10))
			}
			if err != nil && !errors.Is(err, ErrDurable) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrDeleted) {
				t.Error(err)
			}
		}
		stop.Store(true)
	})
	wg.Wait()
	storeBytes(t, st)
}

// A Remove on a durable cache deleted meanwhile (its log closed) reports
// ErrDeleted, as a Put does, not the closed log's storage error.
func TestRemoveOnDeletedDurableCacheIsErrDeleted(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "k", "v", PutOptions{})
	if err := e.st.DeleteDurable(testScope); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Remove("k"); ok || !errors.Is(err, ErrDeleted) {
		t.Fatalf("Remove on the deleted cache: %v, %v; want ErrDeleted", ok, err)
	}
}
