package cache

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// Flush removes every entry, counting the live ones (the expired ones as
// expirations), frees the tables and the bytes, and leaves a cache that
// takes writes, with versions above every earlier one: a compare-and-set
// with a version read before the flush fails.
func TestFlushRemovesEverything(t *testing.T) {
	c, clk := newTestCache(t, Config{Shards: 4})
	const n = 6000 // past shrinkSlots in every shard
	var last uint64
	for i := range n {
		var opt PutOptions
		if i%10 == 0 {
			opt.TTL = new(time.Second)
		}
		last = mustPut(t, c, fmt.Sprintf("k%05d", i), "value", opt)
	}
	clk.Advance(time.Minute) // n/10 entries expire, not yet removed
	old, ok := c.GetWithMeta("k00001")
	if !ok {
		t.Fatal("k00001 missing")
	}
	before := c.Stats()
	if before.Entries != n || tableSlots(c) < n {
		t.Fatalf("before the flush: %+v, %d slots", before, tableSlots(c))
	}

	removed, err := c.Flush()
	if err != nil || removed != n-n/10 {
		t.Fatalf("Flush = %d, %v; want %d live entries removed", removed, err, n-n/10)
	}
	st := c.Stats()
	if st.Flushed != removed || st.Expirations-before.Expirations != n/10 || st.Entries != 0 || st.Bytes != 0 || st.Deletes != 0 {
		t.Fatalf("after the flush: %+v", st)
	}
	if slots := tableSlots(c); slots != 0 {
		t.Fatalf("%d slots held after the flush", slots)
	}
	for i := range c.shards {
		if s := &c.shards[i]; s.index != nil || s.free != nil {
			t.Fatalf("shard %d keeps its map (%d) or free list (%d)", i, len(s.index), len(s.free))
		}
	}
	checkInvariants(t, c)
	wantMiss(t, c, "k00001")

	v := mustPut(t, c, "k00001", "new", PutOptions{})
	if v <= last {
		t.Fatalf("version %d after the flush, not above %d", v, last)
	}
	if _, err := c.Put("k00001", []byte("cas"), PutOptions{IfVersion: &old.Version}); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("compare-and-set with a version read before the flush: %v", err)
	}
	if _, err := c.Put("k00002", []byte("cas"), PutOptions{IfVersion: &old.Version}); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("compare-and-set of a flushed key with an old version: %v", err)
	}
	mustPut(t, c, "k00002", "absent", PutOptions{IfVersion: new(uint64)})
	wantGet(t, c, "k00001", "new")
	checkInvariants(t, c)
	if removed, err := c.Flush(); err != nil || removed != 2 {
		t.Fatalf("second Flush = %d, %v; want 2", removed, err)
	}
	if st := c.Stats(); st.Flushed != n-n/10+2 || st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after the second flush: %+v", st)
	}
}

// A durable cache flushed and reopened is empty but for what was written
// after the flush, and its versions continue above every version handed
// out before (the fake clock gives every run the same starting version,
// so without the floor record they would repeat).
func TestFlushDurableReopen(t *testing.T) {
	for _, policy := range []commitlog.SyncPolicy{commitlog.SyncInterval, commitlog.SyncAlways} {
		t.Run(policy.String(), func(t *testing.T) {
			e := newDurableEnv(t, Config{Shards: 8})
			e.opts.Sync = policy
			e.opts.SegmentBytes = 1024
			c := e.open()
			for i := range 300 {
				mustPut(t, c, fmt.Sprintf("k%03d", i%100), fmt.Sprintf("v%d", i), PutOptions{})
			}
			for i := range 10 {
				c.Delete(fmt.Sprintf("k%03d", i))
			}
			old, _ := c.GetWithMeta("k050")
			last := c.version.Load()
			if c.dur.log.Oldest() != 0 {
				t.Fatal("the test meant several segments, never compacted")
			}

			removed, err := c.Flush()
			if err != nil || removed != 90 {
				t.Fatalf("Flush = %d, %v; want 90", removed, err)
			}
			// The log holds the floor record only.
			if lg := c.dur.log; lg.Next()-lg.Oldest() != 1 {
				t.Fatalf("log after the flush: records %d to %d", lg.Oldest(), lg.Next())
			}
			if st := c.Stats(); st.LogBytes > 1024 {
				t.Fatalf("log %d bytes after the flush", st.LogBytes)
			}
			vAfter := mustPut(t, c, "after", "kept", PutOptions{})

			c = e.open()
			if got := contents(c); len(got) != 1 || got["after"] != fmt.Sprintf("kept@%d", vAfter) {
				t.Fatalf("after the flush and a restart: %v", got)
			}
			c.Delete("after")
			c = e.open()
			if st := c.Stats(); st.Entries != 0 {
				t.Fatalf("%d entries loaded", st.Entries)
			}
			if c.version.Load() < last {
				t.Fatalf("version counter %d after the restart, below %d handed out before the flush", c.version.Load(), last)
			}
			if _, err := c.Put("k050", []byte("x"), PutOptions{IfVersion: &old.Version}); !errors.Is(err, ErrConditionFailed) {
				t.Fatalf("compare-and-set with a version from before the flush: %v", err)
			}

			// Flushed again with nothing written since, then reopened:
			// the versions still go on (the last floor carries them).
			mustPut(t, c, "k050", "y", PutOptions{})
			last = c.version.Load()
			if removed, err := c.Flush(); err != nil || removed != 1 {
				t.Fatalf("second Flush = %d, %v", removed, err)
			}
			c = e.open()
			if v := mustPut(t, c, "k050", "z", PutOptions{}); v <= last {
				t.Fatalf("version %d after flush and restart, not above %d", v, last)
			}
			if st := c.Stats(); st.Entries != 1 {
				t.Fatalf("%d entries", st.Entries)
			}
		})
	}
}

// Puts from several goroutines race with repeated flushes: a put is kept
// exactly when its version is above the last flush's (no put is half
// before and half after a flush, whatever its shard), every put is either
// kept or counted by one flush, and a durable cache (compacted over and
// over meanwhile) reloads what memory holds.
func TestFlushConcurrentPuts(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprint("durable=", durable), func(t *testing.T) {
			var (
				c *Cache
				e *durableEnv
			)
			if durable {
				e = newDurableEnv(t, Config{Shards: 8})
				c = e.open()
			} else {
				c, _ = newTestCache(t, Config{Shards: 8})
			}
			const writers, flushes = 6, 20
			var (
				stop     atomic.Bool
				puts     atomic.Int64
				wg       sync.WaitGroup
				versions = make([][]uint64, writers)
			)
			put := func(w, i int) bool {
				v, err := c.Put(fmt.Sprintf("w%d-%d", w, i), []byte("some value"), PutOptions{})
				if err != nil {
					t.Errorf("writer %d put %d: %v", w, i, err)
					return false
				}
				versions[w] = append(versions[w], v)
				puts.Add(1)
				return true
			}
			for w := range writers {
				wg.Go(func() {
					i := 0
					for ; !stop.Load(); i++ {
						if !put(w, i) {
							return
						}
					}
					put(w, i) // one after the last flush
				})
			}
			if durable {
				wg.Go(func() { // compactions racing with the flushes
					for !stop.Load() {
						if err := c.Compact(); err != nil && !errors.Is(err, ErrCompacting) {
							t.Errorf("Compact: %v", err)
							return
						}
					}
				})
			}
			var removed uint64
			for range flushes {
				// Writes between two flushes, and during them.
				at := puts.Load()
				eventually(t, "puts between flushes", func() bool { return puts.Load() >= at+40 })
				r, err := c.Flush()
				if err != nil {
					t.Fatal(err)
				}
				removed += r
			}
			at := puts.Load()
			eventually(t, "puts after the last flush", func() bool { return puts.Load() >= at+40 })
			stop.Store(true)
			wg.Wait()
			checkInvariants(t, c)

			var kept, total uint64
			maxGone, minKept := uint64(0), uint64(math.MaxUint64)
			for w := range writers {
				for i, v := range versions[w] {
					total++
					it, ok := c.GetWithMeta(fmt.Sprintf("w%d-%d", w, i))
					switch {
					case ok && it.Version != v:
						t.Fatalf("w%d-%d at version %d, written at %d", w, i, it.Version, v)
					case ok:
						kept++
						minKept = min(minKept, v)
					default:
						maxGone = max(maxGone, v)
					}
				}
			}
			if maxGone >= minKept {
				t.Fatalf("a put at version %d was flushed, one at %d kept", maxGone, minKept)
			}
			if kept == 0 || removed+kept != total || c.Stats().Flushed != removed {
				t.Fatalf("%d puts: %d kept, %d counted removed by %d flushes (Stats.Flushed %d)", total, kept, removed, flushes, c.Stats().Flushed)
			}
			t.Logf("%d puts, %d removed by %d flushes, %d kept", total, removed, flushes, kept)
			if durable {
				want := contents(c)
				t.Logf("%d compactions", c.Stats().Compactions)
				c = e.open()
				sameContents(t, "after the flushes and a restart", contents(c), want)
			}
		})
	}
}

// A flush while a compaction runs, between two of its shards (the
// compaction wrote some shards' snapshot before the flush, writes the
// others' after), loses nothing written after the flush and resurrects
// nothing it removed, across a restart.
func TestFlushDuringCompaction(t *testing.T) {
	for _, at := range []int{0, 3, 7} {
		t.Run(fmt.Sprint("flush after shard ", at), func(t *testing.T) {
			e := newDurableEnv(t, Config{Shards: 8})
			e.opts.SegmentBytes = 512
			c := e.open()
			for i := range 400 {
				mustPut(t, c, fmt.Sprintf("k%02d", i%60), fmt.Sprintf("v%d", i), PutOptions{})
			}
			last := c.version.Load()
			c.dur.compactHook = func(shard int) error {
				if shard == at {
					if removed, err := c.Flush(); err != nil || removed != 60 {
						t.Errorf("Flush = %d, %v; want 60", removed, err)
					}
					for j := range 10 { // into shards done and shards to come
						mustPut(t, c, fmt.Sprintf("after%d", j), "new", PutOptions{})
					}
					mustPut(t, c, "k01", "again", PutOptions{})
				}
				return nil
			}
			if err := c.Compact(); err != nil {
				t.Fatal(err)
			}
			want := contents(c)
			if len(want) != 11 {
				t.Fatalf("%d entries after the flush, want 11", len(want))
			}
			c = e.open()
			sameContents(t, "after the flush mid-compaction and a restart", contents(c), want)
			if v := mustPut(t, c, "fresh", "x", PutOptions{}); v <= last {
				t.Fatalf("version %d after the restart, not above %d", v, last)
			}
		})
	}
}

// A flush that the log refuses (closed here) fails with a StorageError,
// counted, and leaves every entry, in memory and across a restart.
func TestFlushLogRefusesKeepsEntries(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	c := e.open()
	for i := range 50 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "v", PutOptions{})
	}
	want := contents(c)
	e.st.Close()
	removed, err := c.Flush()
	var se *StorageError
	if removed != 0 || !errors.As(err, &se) || se.Op != "flush" || !errors.Is(err, commitlog.ErrClosed) {
		t.Fatalf("Flush of a closed log = %d, %v; want a StorageError over ErrClosed", removed, err)
	}
	sameContents(t, "after the refused flush", contents(c), want)
	if st := c.Stats(); st.LogWriteErrors == 0 || st.Flushed != 0 || st.Entries != 50 {
		t.Fatalf("after the refused flush: %+v", st)
	}
	checkInvariants(t, c)
	e.st = nil
	c = e.open()
	sameContents(t, "after a restart", contents(c), want)
}

// A purge that fails after deleting part of the log (a segment that could
// not be removed) fails the flush and leaves the entries, and the log is
// repaired: a restart loads them all, and the versions go on.
func TestFlushPartialPurgeRewritesEntries(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	e.opts.SegmentBytes = 512
	c := e.open()
	for i := range 200 {
		mustPut(t, c, fmt.Sprintf("k%02d", i%50), fmt.Sprintf("v%d", i), PutOptions{})
	}
	c.Delete("k07")
	want := contents(c)
	last := c.version.Load()
	c.dur.purgeHook = func() (uint64, error) {
		if _, _, err := c.dur.log.Purge(); err != nil {
			return 0, err
		}
		return 0, errors.New("injected: a segment could not be removed")
	}
	removed, err := c.Flush()
	if removed != 0 || !errors.Is(err, ErrStorage) {
		t.Fatalf("Flush with a failing purge = %d, %v", removed, err)
	}
	sameContents(t, "after the failed flush", contents(c), want)
	checkInvariants(t, c)
	c.dur.purgeHook = nil
	c = e.open()
	sameContents(t, "after the failed flush and a restart", contents(c), want)
	if v := mustPut(t, c, "k07", "x", PutOptions{}); v <= last {
		t.Fatalf("version %d after the restart, not above %d", v, last)
	}
}

// Once the log is purged the flush has happened: a second floor record
// that cannot be written (the log closed) still leaves the cache empty,
// as the log is, and reports the StorageError.
func TestFlushFloorAfterPurgeFails(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	c := e.open()
	for i := range 20 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "v", PutOptions{})
	}
	c.dur.purgeHook = func() (uint64, error) {
		first, _, err := c.dur.log.Purge()
		if err == nil {
			err = c.dur.log.Close()
		}
		return first, err
	}
	removed, err := c.Flush()
	if removed != 20 || !errors.Is(err, ErrStorage) || !errors.Is(err, commitlog.ErrClosed) {
		t.Fatalf("Flush whose floor fails = %d, %v; want 20 and a StorageError", removed, err)
	}
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 || st.Flushed != 20 {
		t.Fatalf("after the flush: %+v", st)
	}
	c = e.open()
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries loaded after the purge", st.Entries)
	}
}

// A deleted cache refuses Flush with ErrDeleted, in memory and durable.
func TestFlushDeletedCache(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	mustPut(t, c, "k", "v", PutOptions{})
	st := NewStore(StoreOptions{SweepInterval: -1})
	defer st.Close()
	mem, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, mem, "k", "v", PutOptions{})
	if err := st.Delete(testScope); err != nil {
		t.Fatal(err)
	}
	if removed, err := mem.Flush(); removed != 0 || !errors.Is(err, ErrDeleted) {
		t.Fatalf("Flush of a deleted cache = %d, %v", removed, err)
	}

	e := newDurableEnv(t, Config{})
	d := e.open()
	mustPut(t, d, "k", "v", PutOptions{})
	if err := e.st.DeleteDurable(testScope); err != nil {
		t.Fatal(err)
	}
	if removed, err := d.Flush(); removed != 0 || !errors.Is(err, ErrDeleted) {
		t.Fatalf("Flush of a deleted durable cache = %d, %v", removed, err)
	}
	if removed, err := c.Flush(); err != nil || removed != 1 {
		t.Fatalf("Flush of another cache = %d, %v", removed, err)
	}
}
