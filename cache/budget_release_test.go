package cache

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// budgetUnit is the accounted size of one of hunt16Budget's entries.
func budgetUnit() int64 { return entrySize("k00", 1000) }

// valueOf returns a value that makes key's entry account units entries
// of hunt16Budget.
func valueOf(key string, units int64) []byte {
	return make([]byte, units*budgetUnit()-entrySize(key, 0))
}

// A write that needs room while the budget's bytes are a deleted durable
// cache's, whose DeleteDurable waits for a running compaction before its
// entries are dropped, neither waits nor evicts: the deletion took the
// cache's bytes out of the budget when it unregistered it.
func TestBudgetWriteDoesNotWaitForADeletedCache(t *testing.T) {
	st, d, m, _ := hunt16Budget(t, 10, 8, 2)
	defer st.Close()
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	var waits atomic.Int64
	st.budget.waitHook = func() {
		if waits.Add(1) == 1000 {
			free() // a writer going round: let the deletion finish rather than hang
		}
	}
	entered := make(chan struct{})
	d.dur.compactHook = func(shard int) error {
		if shard == 0 {
			close(entered)
			<-release
		}
		return nil
	}
	d.startCompaction()
	<-entered
	deleted := make(chan error, 1)
	go func() { deleted <- st.DeleteDurable(d.Scope()) }()
	for { // unregistered; its log's close then waits for the compaction
		if _, err := st.Get(d.Scope()); err != nil {
			break
		}
		runtime.Gosched()
	}
	// m holds 2 of the budget's 10 entries; the write needs 3.
	err := within(t, "Put", func() error {
		_, err := m.Put("big", valueOf("big", 3), PutOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, ev := waits.Load(), m.Stats().Evictions; n != 0 || ev != 0 {
		t.Fatalf("the write waited %d times and evicted %d of its cache's entries for the bytes of a deleted cache", n, ev)
	}
	select {
	case err := <-deleted:
		t.Fatalf("DeleteDurable returned (%v) with its compaction held", err)
	default:
	}
	free()
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	storeBytes(t, st)
}

// While the largest cache is a durable one whose log refuses writes (a
// full disk), writes that need room evict from the other caches without
// trying its log each time: it refused once, and is a victim again only
// when no other cache can give room.
func TestBudgetSkipsAVictimWhoseLogFails(t *testing.T) {
	st, d, m, v := hunt16Budget(t, 10, 6, 2)
	defer st.Close()
	o := mustCreate(t, st, "o", Config{})
	mustPut(t, o, "k00", v, PutOptions{})
	mustPut(t, o, "k01", v, PutOptions{})
	if err := d.dur.log.Close(); err != nil { // its disk is full, say
		t.Fatal(err)
	}
	const writes = 6
	for i := range writes {
		if _, err := m.Put(fmt.Sprintf("n%02d", i), []byte(v), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.Stats().LogWriteErrors; n > 1 {
		t.Fatalf("the failing log was tried %d times for %d writes that needed room, want at most once", n, writes)
	}
	if sd := d.Stats(); sd.Entries != 6 {
		t.Fatalf("the durable cache lost entries its log did not record: %+v", sd)
	}
	storeBytes(t, st)
}

// A durable cache marked as failing (its log refused a write) is skipped
// while another cache can give room, and evicted from when none can: a
// log that works again takes the eviction record, which clears the mark.
func TestBudgetFailingVictimIsTriedLast(t *testing.T) {
	st, d, m, v := hunt16Budget(t, 4, 3, 1)
	defer st.Close()
	d.dur.failing.Store(true) // as after a refused write; the log works now
	mustPut(t, m, "k01", v, PutOptions{})
	if sm, sd := m.Stats(), d.Stats(); sm.Evictions != 1 || sd.Evictions != 0 {
		t.Fatalf("evictions: %d from the in-memory cache, %d from the failing one; want 1, 0", sm.Evictions, sd.Evictions)
	}
	// m holds only the key being written: the room comes from d after all.
	if _, err := m.Put("k01", []byte(v+v), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if sd := d.Stats(); sd.Evictions != 1 || sd.LogWriteErrors != 0 || d.dur.failing.Load() {
		t.Fatalf("durable cache %+v, failing %v: want one logged eviction that cleared the mark", sd, d.dur.failing.Load())
	}
	storeBytes(t, st)
}

// ReplaceDurable takes the in-memory cache's bytes out of the budget at
// the swap, not when its entries are dropped afterwards: meanwhile the
// budget holds exactly the registered caches' bytes, and a write that
// fits beside them evicts nothing.
func TestReplaceDurableReleasesTheOldBytesAtTheSwap(t *testing.T) {
	dir := t.TempDir()
	v := strings.Repeat("x", 1000)
	st0 := NewStore(StoreOptions{SweepInterval: -1})
	c0 := hunt16Durable(t, st0, dir, "r", Config{})
	for i := range 3 {
		mustPut(t, c0, fmt.Sprintf("k%02d", i), v, PutOptions{})
	}
	st0.Close()

	st := NewStore(StoreOptions{SweepInterval: -1, MaxTotalBytes: 10 * budgetUnit()})
	defer st.Close()
	r := mustCreate(t, st, "r", Config{})
	m := mustCreate(t, st, "m", Config{})
	for i := range 5 {
		mustPut(t, r, fmt.Sprintf("k%02d", i), v, PutOptions{})
	}
	mustPut(t, m, "k00", v, PutOptions{})
	mustPut(t, m, "k01", v, PutOptions{})
	hooked := false
	st.dropHook = func(old *Cache) {
		hooked = true
		if old != r || old.Stats().Entries != 5 {
			t.Errorf("dropping %v with %d entries, want the replaced cache with 5", old.Scope(), old.Stats().Entries)
		}
		var sum int64
		for _, x := range st.Caches() {
			sum += x.Stats().Bytes
		}
		if used, _ := st.MemoryBytes(); used != sum {
			t.Errorf("at the swap the budget holds %d bytes, the registered caches %d", used, sum)
		}
		// 2 (m) + 3 (the loaded cache) + 4 fit in 10.
		if _, err := m.Put("big", valueOf("big", 4), PutOptions{}); err != nil {
			t.Error(err)
		}
	}
	nr, err := st.ReplaceDurable(r.Scope(), Config{}, hunt16Opts(dir, "r"))
	if err != nil {
		t.Fatal(err)
	}
	if !hooked {
		t.Fatal("the replaced cache was not dropped")
	}
	if sm, sn := m.Stats(), nr.Stats(); sm.Evictions != 0 || sn.Evictions != 0 || sn.Entries != 3 {
		t.Fatalf("a write that fit evicted: %d from m, %d from the loaded cache (%d entries left)", sm.Evictions, sn.Evictions, sn.Entries)
	}
	if _, err := r.Put("k", []byte(v), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Put on the replaced cache: %v, want ErrDeleted", err)
	}
	storeBytes(t, st)
}
