package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEvictionKeepsBytesUnderCapacity drives 100k random writes, deletes and
// expiries through a bounded cache and checks the byte bound after every
// write and the exact accounting along the way.
func TestEvictionKeepsBytesUnderCapacity(t *testing.T) {
	const max = 256 << 10
	c, clk := newTestCache(t, Config{MaxBytes: max})
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, 2048)
	keys := make([]string, 20_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	for i := range 100_000 {
		k := keys[rng.IntN(len(keys))]
		switch r := rng.IntN(100); {
		case r < 5:
			c.Delete(k)
		case r < 15:
			mustPut(t, c, k, string(value[:rng.IntN(len(value))]), PutOptions{TTL: new(time.Duration(rng.IntN(5)) * time.Second)})
		default:
			if _, err := c.Put(k, value[:rng.IntN(len(value))], PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if b := c.bytes.Load(); b > max {
			t.Fatalf("write %d: %d bytes over capacity %d", i, b, max)
		}
		if i%1000 == 0 {
			clk.Advance(time.Second)
		}
		if i%10_000 == 0 {
			checkInvariants(t, c)
		}
	}
	checkInvariants(t, c)
	st := c.Stats()
	if st.Evictions == 0 || st.Bytes < max/2 {
		t.Fatalf("the test did not fill the cache: %+v", st)
	}
	t.Logf("%+v", st)
}

// TestEvictionUnderConcurrentWriters checks the bound while writers race.
func TestEvictionUnderConcurrentWriters(t *testing.T) {
	const max = 64 << 10
	c, _ := newTestCache(t, Config{MaxBytes: max, Shards: 4})
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		overMax atomic.Int64
	)
	wg.Go(func() {
		for !stop.Load() {
			if b := c.bytes.Load(); b > max {
				overMax.Store(b)
			}
		}
	})
	var writers sync.WaitGroup
	for g := range 8 {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			value := make([]byte, 4096)
			for range 10_000 {
				k := fmt.Sprintf("k%d", rng.IntN(5000))
				if _, err := c.Put(k, value[:rng.IntN(len(value))], PutOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	stop.Store(true)
	wg.Wait()
	if b := overMax.Load(); b != 0 {
		t.Fatalf("observed %d bytes, over capacity %d", b, max)
	}
	checkInvariants(t, c)
}

// TestEvictionPrefersColdKeys fills a bounded cache with a stream of cold
// keys while reading a small hot set; approximate LRU must keep the hot set.
func TestEvictionPrefersColdKeys(t *testing.T) {
	const (
		value    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" // 64 B
		perEntry = 8 + len(value) + EntryOverhead                                     // keys are 8 bytes
		capacity = 1000                                                               // entries
		hot      = 100
		cold     = 20_000
	)
	c, _ := newTestCache(t, Config{MaxBytes: int64(capacity * perEntry)})
	hotKey := func(i int) string { return fmt.Sprintf("hot-%04d", i) }
	for i := range hot {
		mustPut(t, c, hotKey(i), value, PutOptions{})
	}
	for i := range cold {
		mustPut(t, c, fmt.Sprintf("c-%06d", i), value, PutOptions{})
		// Each hot key is read once every `hot` cold writes: about ten times
		// per lifetime of a cold key.
		c.Get(hotKey(i % hot))
	}
	survived := 0
	for i := range hot {
		if _, ok := c.Get(hotKey(i)); ok {
			survived++
		}
	}
	st := c.Stats()
	t.Logf("%d of %d hot keys survived %d evictions", survived, hot, st.Evictions)
	if survived < hot*8/10 {
		t.Fatalf("only %d of %d hot keys survived", survived, hot)
	}
	if st.Evictions < cold-capacity {
		t.Fatalf("%d evictions; the cache did not fill", st.Evictions)
	}
	checkInvariants(t, c)
}

// TestEvictionRemovesExpiredSamplesFirst: an expired sample is reclaimed as
// an expiration, not counted as an eviction.
func TestEvictionRemovesExpiredSamplesFirst(t *testing.T) {
	per := entrySize("k-00", 10)
	c, clk := newTestCache(t, Config{MaxBytes: 10 * per, Shards: 1, EvictionSamples: 20})
	for i := range 10 {
		mustPut(t, c, fmt.Sprintf("k-%02d", i), "0123456789", PutOptions{TTL: new(time.Second)})
	}
	clk.Advance(time.Second)
	mustPut(t, c, "k-10", "0123456789", PutOptions{})
	if st := c.Stats(); st.Evictions != 0 || st.Expirations != 1 || st.Entries != 10 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFailedConditionsDoNotEvict: on a full cache, writes whose condition
// fails leave every entry in place.
func TestFailedConditionsDoNotEvict(t *testing.T) {
	per := entrySize("k-00", 10)
	c, _ := newTestCache(t, Config{MaxBytes: 10 * per})
	for i := range 10 {
		mustPut(t, c, fmt.Sprintf("k-%02d", i), "0123456789", PutOptions{})
	}
	for i := range 10 {
		key := fmt.Sprintf("k-%02d", i)
		if _, err := c.Put(key, []byte("0123456789"), PutOptions{IfAbsent: true}); err == nil {
			t.Fatal("IfAbsent on a present key succeeded")
		}
		if _, err := c.Put(key, []byte("0123456789"), PutOptions{IfVersion: new(uint64(1000))}); err == nil {
			t.Fatal("IfVersion with a wrong version succeeded")
		}
	}
	if st := c.Stats(); st.Evictions != 0 || st.Entries != 10 || st.ConditionFailed != 20 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c)
}

// TestOverwriteNeverEvictsItsOwnKey: a write that replaces an entry needs
// room only for the size difference, and never evicts the key it writes.
// A compare-and-set of the only entry of a cache more than half full used
// to evict that entry to make room for its replacement and then fail with
// "does not exist", losing the value it was meant to update.
func TestOverwriteNeverEvictsItsOwnKey(t *testing.T) {
	c, _ := newTestCache(t, Config{MaxBytes: 1000})
	v1 := mustPut(t, c, "k", string(make([]byte, 600)), PutOptions{})
	// 697 bytes stored, 697 more needed: only k itself could make room.
	v2, err := c.Put("k", make([]byte, 600), PutOptions{IfVersion: &v1})
	if err != nil || v2 <= v1 {
		t.Fatalf("CAS of the only entry: %d %v", v2, err)
	}
	if v, ok := c.Get("k"); !ok || len(v) != 600 {
		t.Fatalf("after CAS: %d bytes, %v", len(v), ok)
	}
	// Shrinking and growing it again, by CAS.
	v3, err := c.Put("k", []byte("x"), PutOptions{IfVersion: &v2})
	if err != nil {
		t.Fatalf("CAS shrinking the only entry: %v", err)
	}
	if v3, err = c.Put("k", make([]byte, 600), PutOptions{IfVersion: &v3}); err != nil {
		t.Fatalf("CAS growing the only entry: %v", err)
	}
	// A CAS that fails leaves the entry in place.
	if _, err := c.Put("k", make([]byte, 600), PutOptions{IfVersion: &v1}); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("stale CAS: %v", err)
	}
	if it, ok := c.GetWithMeta("k"); !ok || it.Version != v3 {
		t.Fatalf("after a failed CAS: %+v %v", it, ok)
	}
	if st := c.Stats(); st.Evictions != 0 || st.Bytes != 600+1+EntryOverhead {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c)

	// Two entries that fit together: rewriting one at the same size
	// evicts nothing.
	c2, _ := newTestCache(t, Config{MaxBytes: 1000})
	mustPut(t, c2, "a", string(make([]byte, 300)), PutOptions{})
	mustPut(t, c2, "b", string(make([]byte, 300)), PutOptions{})
	for range 10 {
		mustPut(t, c2, "a", string(make([]byte, 300)), PutOptions{})
	}
	if _, ok := c2.Get("b"); !ok {
		t.Fatalf("rewriting a evicted b: %+v", c2.Stats())
	}
	// Growing a evicts b (the only other entry), never a.
	mustPut(t, c2, "a", string(make([]byte, 800)), PutOptions{})
	if _, ok := c2.Get("b"); ok {
		t.Fatal("b kept over capacity")
	}
	if v, ok := c2.Get("a"); !ok || len(v) != 800 {
		t.Fatalf("a after growing: %d %v", len(v), ok)
	}
	if st := c2.Stats(); st.Evictions != 1 || st.Bytes > 1000 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, c2)
}
