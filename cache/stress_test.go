package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Stress tests of the write path: reserve-the-difference under the shard
// lock, evict (never the written key) and retry. Each runs a bounded number
// of operations under a wall-clock deadline; a Put that spins forever or a
// deadlock fails the test with the goroutines' stacks instead of hanging.

// runBounded runs body(g, deadline) on n goroutines and fails the test if
// they have not all returned within limit.
func runBounded(t *testing.T, n int, limit time.Duration, body func(g int, deadline time.Time)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() { body(g, deadline) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit + 5*time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("goroutines still running %v after their deadline (a Put spinning or a deadlock):\n%s", limit+5*time.Second, buf)
	}
}

// watchBytes samples the byte counter until stop is closed and records the
// largest value seen.
func watchBytes(c *Cache, stop <-chan struct{}) (maxSeen func() int64) {
	var seen atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b := c.bytes.Load(); b > seen.Load() {
				seen.Store(b)
			}
			runtime.Gosched()
		}
	}()
	return func() int64 { <-done; return seen.Load() }
}

// stressValue is a value of n bytes (n ≥ 16) that carries (writer, seq)
// and a checksum-free but position-dependent fill, so a torn or foreign
// value is detected.
func stressValue(n int, writer, seq uint64) []byte {
	v := make([]byte, n)
	binary.BigEndian.PutUint64(v, writer)
	binary.BigEndian.PutUint64(v[8:], seq)
	for i := 16; i < n; i++ {
		v[i] = byte(writer*31 + seq*7 + uint64(i))
	}
	return v
}

func validStressValue(v []byte) bool {
	if len(v) < 16 {
		return false
	}
	w, s := binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	for i := 16; i < len(v); i++ {
		if v[i] != byte(w*31+s*7+uint64(i)) {
			return false
		}
	}
	return true
}

// TestStressMixedWritesSmallCapacity: writers of very different sizes (some
// over half of MaxBytes), conditional writes, deletes, reads, TTLs on a
// moving fake clock and sweeps, on a small cache of two shards. The byte
// counter must never exceed MaxBytes, every value read must be whole, no
// operation may fail but as documented, and the accounting must be exact
// whenever every shard is locked (checked during the run and after).
func TestStressMixedWritesSmallCapacity(t *testing.T) {
	const (
		max     = 8 << 10
		workers = 8
		ops     = 4000
	)
	c, clk := newTestCache(t, Config{MaxBytes: max, Shards: 2})
	stop := make(chan struct{})
	maxSeen := watchBytes(c, stop)
	var timeouts atomic.Int64
	sizes := []int{16, 40, 200, 1000, 3000, 4500, 6000, max - EntryOverhead - 8} // last ones > max/2
	runBounded(t, workers+1, 3*time.Second, func(g int, deadline time.Time) {
		if g == workers { // the clock and the sweeper
			for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
				clk.Advance(3 * time.Millisecond)
				c.Sweep(16)
				if i%200 == 0 {
					runtime.Gosched()
				}
			}
			return
		}
		rng := rand.New(rand.NewPCG(uint64(g), 99))
		for seq := uint64(1); seq <= ops; seq++ {
			if time.Now().After(deadline) {
				timeouts.Add(1)
				return
			}
			key := "k" + strconv.Itoa(rng.IntN(12)) // keys of length 2-3
			n := sizes[rng.IntN(len(sizes))]
			var opt PutOptions
			if rng.IntN(4) == 0 {
				opt.TTL = new(time.Duration(rng.IntN(20)-2) * time.Millisecond) // some ≤ 0
			}
			switch r := rng.IntN(100); {
			case r < 40:
				_, err := c.Put(key, stressValue(n, uint64(g), seq), opt)
				if err != nil {
					t.Errorf("Put %s (%d bytes): %v", key, n, err)
					return
				}
			case r < 55:
				opt.IfAbsent = true
				if _, err := c.Put(key, stressValue(n, uint64(g), seq), opt); err != nil && !errors.Is(err, ErrConditionFailed) {
					t.Errorf("IfAbsent %s: %v", key, err)
					return
				}
			case r < 70:
				var ver uint64
				if it, ok := c.GetWithMeta(key); ok {
					ver = it.Version
				}
				opt.IfVersion = &ver
				if _, err := c.Put(key, stressValue(n, uint64(g), seq), opt); err != nil && !errors.Is(err, ErrConditionFailed) {
					t.Errorf("CAS %s: %v", key, err)
					return
				}
			case r < 78:
				c.Delete(key)
			case r < 80:
				c.TTL(key)
			default:
				if v, ok := c.Get(key); ok && !validStressValue(v) {
					t.Errorf("Get %s: a torn or foreign value of %d bytes", key, len(v))
					return
				}
			}
			if b := c.bytes.Load(); b > max {
				t.Errorf("byte counter %d over %d", b, max)
				return
			}
		}
	})
	close(stop)
	if m := maxSeen(); m > max {
		t.Fatalf("byte counter reached %d, over %d", m, max)
	}
	if n := timeouts.Load(); n > 0 {
		t.Logf("%d workers stopped at the deadline", n)
	}
	checkInvariants(t, c)
	t.Logf("%+v", c.Stats())
}

// TestStressInvariantsHoldWhileWriting locks every shard repeatedly while
// writers, deleters and the sweep run, and checks the accounting at those
// instants: whenever no shard can change, the byte counter must equal the
// bytes of the entries (nothing is reserved outside a shard lock).
func TestStressInvariantsHoldWhileWriting(t *testing.T) {
	const max = 4 << 10
	c, clk := newTestCache(t, Config{MaxBytes: max, Shards: 4})
	var checks atomic.Int64
	var mismatch atomic.Pointer[string]
	runBounded(t, 5, 2*time.Second, func(g int, deadline time.Time) {
		switch g {
		case 0: // the checker
			for i := 0; i < 300 && time.Now().Before(deadline); i++ {
				if m := snapshotMismatch(c); m != "" {
					mismatch.CompareAndSwap(nil, &m)
				}
				checks.Add(1)
				runtime.Gosched()
			}
		case 1: // the clock and the sweeper
			for i := 0; i < 3000 && time.Now().Before(deadline); i++ {
				clk.Advance(time.Millisecond)
				c.Sweep(4)
			}
		default:
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for seq := uint64(1); seq <= 5000 && time.Now().Before(deadline); seq++ {
				key := "k" + strconv.Itoa(rng.IntN(40))
				switch rng.IntN(5) {
				case 0:
					c.Delete(key)
				default:
					n := 16 + rng.IntN(max/2)
					if _, err := c.Put(key, stressValue(n, uint64(g), seq), PutOptions{TTL: new(time.Duration(1+rng.IntN(10)) * time.Millisecond)}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}
	})
	if m := mismatch.Load(); m != nil {
		t.Fatalf("with every shard locked, mid-run: %s", *m)
	}
	t.Logf("%d mid-run checks", checks.Load())
	checkInvariants(t, c)
}

// snapshotMismatch locks every shard and compares the byte counter with the
// entries' bytes; it returns "" if they agree.
func snapshotMismatch(c *Cache) string {
	for i := range c.shards {
		c.shards[i].mu.Lock()
	}
	defer func() {
		for i := range c.shards {
			c.shards[i].mu.Unlock()
		}
	}()
	var bytes int64
	for si := range c.shards {
		for i := range c.shards[si].slots {
			if sl := &c.shards[si].slots[i]; sl.version != 0 {
				bytes += sl.size()
			}
		}
	}
	if got := c.bytes.Load(); got != bytes {
		return fmt.Sprintf("byte counter %d, entries account %d", got, bytes)
	}
	return ""
}

// TestStressCASCounterOnFullCache: N goroutines increment counters by
// read-then-IfVersion on a cache whose only entries are those counters,
// each value padded to a random size, some over half of MaxBytes, so most
// writes must evict the other counter. A counter may be evicted by another
// key's write (it is then restarted with IfVersion 0), so the check is on
// the history: every version is consumed by at most one successful CAS,
// every successful CAS writes the value it read plus one, and the chains of
// successful CAS account for every success. The one-key case, where
// nothing may ever be evicted, must end at exactly the number of successes.
func TestStressCASCounterOnFullCache(t *testing.T) {
	for _, keys := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("keys=%d", keys), func(t *testing.T) {
			const (
				max        = 2000
				goroutines = 8
				increments = 300
			)
			c, _ := newTestCache(t, Config{MaxBytes: max, Shards: 2})
			type write struct {
				key        string
				prev, ver  uint64
				value      uint64
				prevValue  uint64
				prevWasHit bool
			}
			results := make([][]write, goroutines)
			var conflicts, restarts atomic.Int64
			runBounded(t, goroutines, 4*time.Second, func(g int, deadline time.Time) {
				rng := rand.New(rand.NewPCG(uint64(g), 11))
				for range increments {
					key := "ctr" + strconv.Itoa(rng.IntN(keys))
					for {
						if time.Now().After(deadline) {
							t.Errorf("goroutine %d: CAS loop past the deadline", g)
							return
						}
						var n, ver uint64
						it, hit := c.GetWithMeta(key)
						if hit {
							n = binary.BigEndian.Uint64(it.Value)
							ver = it.Version
						}
						pad := rng.IntN(max - EntryOverhead - 8 - len(key) + 1)
						v := make([]byte, 8+pad)
						binary.BigEndian.PutUint64(v, n+1)
						got, err := c.Put(key, v, PutOptions{IfVersion: &ver})
						if err == nil {
							if got <= ver {
								t.Errorf("CAS from %d returned version %d", ver, got)
								return
							}
							results[g] = append(results[g], write{key, ver, got, n + 1, n, hit})
							if !hit {
								restarts.Add(1)
							}
							break
						}
						var ce *ConditionError
						if !errors.As(err, &ce) || ce.Current == ver {
							t.Errorf("CAS %s from version %d: %v", key, ver, err)
							return
						}
						conflicts.Add(1)
					}
				}
			})
			if t.Failed() {
				return
			}
			byVer := map[uint64]write{}
			consumed := map[uint64]uint64{}
			total := 0
			for _, rs := range results {
				for _, w := range rs {
					total++
					if _, dup := byVer[w.ver]; dup {
						t.Fatalf("version %d handed out twice", w.ver)
					}
					byVer[w.ver] = w
					if w.prev != 0 {
						if other, dup := consumed[w.prev]; dup {
							t.Fatalf("version %d of %s consumed by two successful CAS (%d and %d)", w.prev, w.key, other, w.ver)
						}
						consumed[w.prev] = w.ver
					}
				}
			}
			if total != goroutines*increments {
				t.Fatalf("%d successful CAS, want %d", total, goroutines*increments)
			}
			for _, w := range byVer {
				if w.prev == 0 {
					if w.value != 1 {
						t.Fatalf("CAS from absent wrote %d", w.value)
					}
					continue
				}
				p, ok := byVer[w.prev]
				if !ok || p.key != w.key {
					t.Fatalf("CAS of %s from version %d, which no successful CAS of it wrote", w.key, w.prev)
				}
				if w.value != p.value+1 {
					t.Fatalf("CAS from version %d (value %d) wrote %d", w.prev, p.value, w.value)
				}
			}
			if keys == 1 {
				// Only one key: nothing else can evict it, so it is never
				// restarted, and it ends at the number of successes.
				if r := restarts.Load(); r != 1 {
					t.Fatalf("the only counter was restarted %d times (evicted by its own CAS?)", r)
				}
				it, ok := c.GetWithMeta("ctr0")
				if !ok || binary.BigEndian.Uint64(it.Value) != uint64(total) {
					t.Fatalf("counter = %v,%v; want %d", it, ok, total)
				}
				if st := c.Stats(); st.Evictions != 0 {
					t.Fatalf("one key, %d evictions", st.Evictions)
				}
			}
			// The surviving value of each key is the one its last CAS wrote.
			for k := range keys {
				key := "ctr" + strconv.Itoa(k)
				if it, ok := c.GetWithMeta(key); ok {
					w, ok := byVer[it.Version]
					if !ok || w.value != binary.BigEndian.Uint64(it.Value) {
						t.Fatalf("%s holds version %d value %d, not a successful CAS's", key, it.Version, binary.BigEndian.Uint64(it.Value))
					}
				}
			}
			st := c.Stats()
			if st.ConditionFailed != uint64(conflicts.Load()) || st.Puts != uint64(total) {
				t.Fatalf("stats %+v, %d conflicts seen, %d successes", st, conflicts.Load(), total)
			}
			checkInvariants(t, c)
			t.Logf("%d successes, %d conflicts, %d restarts, %d evictions", total, conflicts.Load(), restarts.Load(), st.Evictions)
		})
	}
}

// TestStressLargeWritersMakeProgress: every writer writes entries over half
// of MaxBytes to its own key, so at most one fits at a time and each write
// must evict another writer's entry. None may spin forever.
func TestStressLargeWritersMakeProgress(t *testing.T) {
	const max = 1000
	c, _ := newTestCache(t, Config{MaxBytes: max, Shards: 1})
	stop := make(chan struct{})
	maxSeen := watchBytes(c, stop)
	var done atomic.Int64
	runBounded(t, 6, 3*time.Second, func(g int, deadline time.Time) {
		key := "big" + strconv.Itoa(g)
		for i := uint64(1); i <= 2000 && time.Now().Before(deadline); i++ {
			n := 520 + int(i%300)
			if n+len(key)+EntryOverhead > max {
				n = max - len(key) - EntryOverhead
			}
			opt := PutOptions{}
			if i%3 == 0 {
				opt.IfAbsent = true
			}
			if _, err := c.Put(key, stressValue(n, uint64(g), i), opt); err != nil && !errors.Is(err, ErrConditionFailed) {
				t.Error(err)
				return
			}
			if v, ok := c.Get(key); ok && !validStressValue(v) {
				t.Errorf("%s: torn value", key)
				return
			}
			done.Add(1)
		}
	})
	close(stop)
	if m := maxSeen(); m > max {
		t.Fatalf("byte counter reached %d", m)
	}
	checkInvariants(t, c)
	if st := c.Stats(); st.Entries > 1 {
		t.Fatalf("%d entries over half of MaxBytes each: %+v", st.Entries, st)
	}
	t.Logf("%d writes, %+v", done.Load(), c.Stats())
}

// TestStressDeleteCacheDuringWrites: Store.Delete while writers fill a full
// cache: every Put returns (ErrDeleted after the delete), the counter ends
// at zero, and nothing hangs.
func TestStressDeleteCacheDuringWrites(t *testing.T) {
	for round := range 20 {
		clk := newFakeClock()
		st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
		c, err := st.Create(testScope, Config{MaxBytes: 2000, Shards: 2})
		if err != nil {
			t.Fatal(err)
		}
		var started sync.WaitGroup
		started.Add(4)
		var puts atomic.Int64
		runBounded(t, 5, 2*time.Second, func(g int, deadline time.Time) {
			if g == 4 {
				started.Wait()
				for puts.Load() < 200 && time.Now().Before(deadline) {
					runtime.Gosched()
				}
				if err := st.Delete(testScope); err != nil {
					t.Error(err)
				}
				return
			}
			started.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(round)))
			for i := uint64(1); i <= 3000 && time.Now().Before(deadline); i++ {
				_, err := c.Put("k"+strconv.Itoa(rng.IntN(8)), stressValue(16+rng.IntN(1200), uint64(g), i), PutOptions{})
				if errors.Is(err, ErrDeleted) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				puts.Add(1)
			}
		})
		if _, err := c.Put("after", []byte("x"), PutOptions{}); !errors.Is(err, ErrDeleted) {
			t.Fatalf("Put after Delete: %v", err)
		}
		if b := c.bytes.Load(); b != 0 {
			t.Fatalf("round %d: byte counter %d after Delete", round, b)
		}
		st.Close()
	}
}

// TestSweepReleasesBytesUnderTheLock: the sweep frees a shard's expired
// entries in chunks, releasing the shard's lock between chunks. The bytes
// it freed must leave the counter in the same lock hold: while it lagged,
// every shard locked showed the counter above the entries' bytes, and a
// write on a full cache between two chunks evicted live entries to make
// room that was already free.
func TestSweepReleasesBytesUnderTheLock(t *testing.T) {
	const expiring, live = 3 * sweepChunk, 20
	per := entrySize("e-0000", 10)
	c, clk := newTestCache(t, Config{MaxBytes: (expiring + live) * per, Shards: 1})
	for i := range expiring {
		mustPut(t, c, fmt.Sprintf("e-%04d", i), "0123456789", PutOptions{TTL: new(time.Second)})
	}
	for i := range live {
		mustPut(t, c, fmt.Sprintf("l-%04d", i), "0123456789", PutOptions{})
	}
	clk.Advance(time.Second)
	var stop atomic.Bool
	var mismatch atomic.Pointer[string]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100_000 && !stop.Load(); i++ {
			if m := snapshotMismatch(c); m != "" {
				mismatch.CompareAndSwap(nil, &m)
				return
			}
		}
	}()
	for range 40 {
		if c.Sweep(expiring+live) == 0 {
			// Refill and sweep again, so the checker gets many chances.
			for i := range expiring {
				mustPut(t, c, fmt.Sprintf("e-%04d", i), "0123456789", PutOptions{TTL: new(time.Second)})
			}
			clk.Advance(time.Second)
		}
		if mismatch.Load() != nil {
			break
		}
	}
	stop.Store(true)
	<-done
	if m := mismatch.Load(); m != nil {
		t.Fatalf("between two sweep chunks, with every shard locked: %s", *m)
	}
	if st := c.Stats(); st.Evictions != 0 {
		t.Fatalf("%d live entries evicted", st.Evictions)
	}
	checkInvariants(t, c)
}
