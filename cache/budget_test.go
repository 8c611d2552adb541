package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storeBytes checks that the Store's budget holds the sum of its caches'
// bytes and at most its bound, and returns the sum.
func storeBytes(t *testing.T, st *Store) int64 {
	t.Helper()
	var sum int64
	for _, c := range st.Caches() {
		sum += c.Stats().Bytes
	}
	used, limit := st.MemoryBytes()
	if used != sum {
		t.Fatalf("budget used %d, caches hold %d", used, sum)
	}
	if limit > 0 && used > limit {
		t.Fatalf("budget used %d over its bound %d", used, limit)
	}
	return used
}

func mustCreate(t *testing.T, st *Store, name string, cfg Config) *Cache {
	t.Helper()
	c, err := st.Create(Scope{"t", "ns", name}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A write that would take the Store over MaxTotalBytes evicts from the
// cache that holds most: a cache that never reached its own capacity
// gives room back to another that needs it, and the total stays bounded.
func TestStoreBudgetEvictsFromTheLargestCache(t *testing.T) {
	const value = 1000
	per := entrySize("k000", value)
	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: 20 * per})
	defer st.Close()
	a := mustCreate(t, st, "a", Config{})
	b := mustCreate(t, st, "b", Config{})
	v := strings.Repeat("x", value)
	for i := range 20 {
		mustPut(t, a, fmt.Sprintf("k%03d", i), v, PutOptions{})
	}
	if got := storeBytes(t, st); got != 20*per {
		t.Fatalf("store holds %d, want %d", got, 20*per)
	}
	for i := range 10 {
		mustPut(t, b, fmt.Sprintf("k%03d", i), v, PutOptions{})
		storeBytes(t, st)
	}
	if sa, sb := a.Stats(), b.Stats(); sa.Entries != 10 || sa.Evictions != 10 || sb.Entries != 10 || sb.Evictions != 0 {
		t.Fatalf("a %+v\nb %+v\nwant 10 entries each, a's 10 others evicted", sa, sb)
	}
	// b then grows on its own entries: the largest cache now alternates.
	for i := 10; i < 40; i++ {
		mustPut(t, b, fmt.Sprintf("k%03d", i), v, PutOptions{})
		storeBytes(t, st)
	}
	if got := storeBytes(t, st); got != 20*per {
		t.Fatalf("store holds %d, want %d", got, 20*per)
	}
	// Incr reserves against the budget too.
	if _, _, err := a.Incr("n", 1, nil); err != nil {
		t.Fatal(err)
	}
	storeBytes(t, st)
}

// An entry larger than the whole budget is refused, and nothing is
// evicted for it.
func TestStoreBudgetRefusesAnEntryLargerThanIt(t *testing.T) {
	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: 4096})
	defer st.Close()
	c := mustCreate(t, st, "c", Config{})
	mustPut(t, c, "small", "v", PutOptions{})
	_, err := c.Put("big", make([]byte, 4096), PutOptions{})
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.MaxBytes != 4096 {
		t.Fatalf("Put of an entry over the budget: %v, want a *TooLargeError naming 4096", err)
	}
	wantGet(t, c, "small", "v")
	if c.Stats().Evictions != 0 {
		t.Fatal("an eviction for a refused entry")
	}
}

// Whatever removes entries gives their bytes back to the budget: a
// delete, a flush, expiry (lazy and swept), the deletion and the
// replacement of a cache.
func TestStoreBudgetGetsBytesBack(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1, MaxTotalBytes: 1 << 20})
	defer st.Close()
	a := mustCreate(t, st, "a", Config{})
	b := mustCreate(t, st, "b", Config{})
	ttl := time.Second
	for i := range 10 {
		mustPut(t, a, fmt.Sprint("k", i), "value", PutOptions{})
		mustPut(t, b, fmt.Sprint("k", i), "value", PutOptions{TTL: &ttl})
	}
	full := storeBytes(t, st)
	a.Delete("k0")
	if _, err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := storeBytes(t, st); got != full/2 {
		t.Fatalf("after a's flush the store holds %d, want %d", got, full/2)
	}
	clk.Advance(2 * time.Second)
	wantMiss(t, b, "k0") // lazy expiry
	st.Sweep(1000)
	if got := storeBytes(t, st); got != 0 {
		t.Fatalf("after expiry the store holds %d, want 0", got)
	}
	mustPut(t, a, "k", "value", PutOptions{})
	mustPut(t, b, "k", "value", PutOptions{})
	if err := st.Delete(b.Scope()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Replace(a.Scope(), Config{MaxBytes: 1 << 10}); err != nil {
		t.Fatal(err)
	}
	if used, _ := st.MemoryBytes(); used != 0 {
		t.Fatalf("after the caches' deletion and replacement the budget holds %d", used)
	}
}

// Concurrent writers on several caches never take the Store over its
// budget, and its count stays the sum of the caches'.
func TestStoreBudgetConcurrentWriters(t *testing.T) {
	const limit = 64 << 10
	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: limit})
	defer st.Close()
	caches := []*Cache{
		mustCreate(t, st, "a", Config{}),
		mustCreate(t, st, "b", Config{MaxBytes: 16 << 10}),
		mustCreate(t, st, "c", Config{}),
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			c := caches[w%len(caches)]
			for i := range 2000 {
				key := fmt.Sprintf("w%d-%d", w, i%300)
				var err error
				if i%7 == 0 {
					_, _, err = c.Incr(key+"n", 1, nil)
				} else {
					_, err = c.Put(key, make([]byte, 100+i%400), PutOptions{})
				}
				if err != nil {
					t.Error(err)
					return
				}
				if used, _ := st.MemoryBytes(); used > limit {
					t.Errorf("budget at %d, over %d", used, limit)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := storeBytes(t, st); got < limit/2 {
		t.Fatalf("store holds %d of %d after the writes: evicted far too much", got, limit)
	}
}

// A durable cache counts against the budget from its load, and one loaded
// over it makes later writes evict down to it.
func TestStoreBudgetCountsALoadedDurableCache(t *testing.T) {
	dir := t.TempDir()
	opts := DurableOptions{Dir: dir, SegmentBytes: 4096, CompactMinBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler)}
	st := NewStore(StoreOptions{SweepInterval: -1})
	d, err := st.CreateDurable(Scope{"t", "ns", "d"}, Config{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustPut(t, d, fmt.Sprint("k", i), strings.Repeat("x", 200), PutOptions{})
	}
	loaded := d.Stats().Bytes
	st.Close()

	st = NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: loaded / 2})
	defer st.Close()
	if d, err = st.CreateDurable(Scope{"t", "ns", "d"}, Config{}, opts); err != nil {
		t.Fatal(err)
	}
	if used, _ := st.MemoryBytes(); used != loaded {
		t.Fatalf("budget holds %d after the load, want %d", used, loaded)
	}
	m := mustCreate(t, st, "m", Config{})
	mustPut(t, m, "k", "v", PutOptions{})
	if got := storeBytes(t, st); got > loaded/2 {
		t.Fatalf("store holds %d, over its bound %d", got, loaded/2)
	}
	if d.Stats().Evictions == 0 {
		t.Fatal("the durable cache loaded over the bound evicted nothing")
	}
}

// A key that holds most of the budget grows: the room comes from another
// cache even though the writer's own cache is the largest.
func TestStoreBudgetGrowingLargestKeyEvictsElsewhere(t *testing.T) {
	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: 10_000})
	defer st.Close()
	a := mustCreate(t, st, "a", Config{})
	b := mustCreate(t, st, "b", Config{})
	mustPut(t, a, "big", strings.Repeat("x", 6000), PutOptions{})
	mustPut(t, b, "k1", strings.Repeat("y", 1000), PutOptions{})
	mustPut(t, b, "k2", strings.Repeat("y", 1000), PutOptions{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Put("big", make([]byte, 8000), PutOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the growing put never found room")
	}
	if sb := b.Stats(); sb.Entries != 1 || sb.Evictions != 1 {
		t.Fatalf("b %+v, want one of its entries evicted", sb)
	}
	storeBytes(t, st)
}

// A write the budget refuses takes room from another cache whose only
// entry is the empty key's: the key a write leaves alone is its own, in
// its own cache, not "" in every cache. (The write went round forever:
// no cache had an entry to give but "", which every other cache skipped.)
func TestStoreBudgetEvictsAnotherCachesEmptyKey(t *testing.T) {
	per := entrySize("k", 1000)
	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: 3 * per})
	defer st.Close()
	a := mustCreate(t, st, "a", Config{})
	b := mustCreate(t, st, "b", Config{})
	mustPut(t, a, "", strings.Repeat("x", int(2*per-entrySize("", 0))), PutOptions{})
	var waits atomic.Int64
	st.budget.waitHook = func() {
		if waits.Add(1) == 1000 {
			if err := st.Delete(a.Scope()); err != nil { // give the bytes back rather than hang
				t.Error(err)
			}
		}
	}
	if err := within(t, "Put", func() error {
		_, err := b.Put("k", make([]byte, 2*1000), PutOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n, ev := waits.Load(), a.Stats().Evictions; n != 0 || ev != 1 {
		t.Fatalf("the write waited %d times for room, and a evicted %d entries, want 0 and its empty key", n, ev)
	}
	storeBytes(t, st)
}
