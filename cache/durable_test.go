package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// durableEnv opens durable caches on one directory and one fake clock, as
// a broker restarting on its data directory would.
type durableEnv struct {
	t    *testing.T
	dir  string
	clk  *fakeClock
	cfg  Config
	opts DurableOptions
	st   *Store
}

func newDurableEnv(t *testing.T, cfg Config) *durableEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	e := &durableEnv{t: t, dir: dir, clk: newFakeClock(), cfg: cfg,
		opts: DurableOptions{Dir: dir, SegmentBytes: 4096, CompactMinBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler)}}
	t.Cleanup(func() {
		if e.st != nil {
			e.st.Close()
		}
	})
	return e
}

// open opens the cache (closing the previous Store first: a restart).
func (e *durableEnv) open() *Cache {
	e.t.Helper()
	if e.st != nil {
		e.st.Close()
	}
	e.st = NewStore(StoreOptions{Clock: e.clk, SweepInterval: -1})
	c, err := e.st.CreateDurable(testScope, e.cfg, e.opts)
	if err != nil {
		e.t.Fatalf("CreateDurable: %v", err)
	}
	checkInvariants(e.t, c)
	return c
}

// contents is every live entry of c: key → value@version.
func contents(c *Cache) map[string]string {
	out := map[string]string{}
	now := c.now()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for j := range s.slots {
			if sl := &s.slots[j]; sl.version != 0 && sl.expires > now {
				out[sl.key] = fmt.Sprintf("%s@%d", sl.value, sl.version)
			}
		}
		s.mu.RUnlock()
	}
	return out
}

func sameContents(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: key %q = %q, want %q", what, k, got[k], v)
		}
	}
}

// Puts, deletes, compare-and-sets and TTLs survive a restart: values,
// versions and the remaining TTL are as before, versions go on above every
// version handed out (the fake clock gives both runs the same starting
// version, so without the log's versions they would repeat), and a version
// read before the restart still works as a compare-and-set.
func TestDurableSurvivesRestart(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	va := mustPut(t, c, "a", "1", PutOptions{})
	va = mustPut(t, c, "a", "2", PutOptions{IfVersion: &va})
	vb := mustPut(t, c, "b", "ttl", PutOptions{TTL: new(time.Hour)})
	mustPut(t, c, "c", "gone", PutOptions{})
	if !c.Delete("c") {
		t.Fatal("Delete c reported false")
	}
	vd := mustPut(t, c, "d", "x", PutOptions{})
	mustPut(t, c, "d", "", PutOptions{TTL: new(time.Duration(0))}) // expires at once: removes d
	last := c.version.Load()
	e.clk.Advance(10 * time.Minute)

	c = e.open()
	it, ok := c.GetWithMeta("a")
	if !ok || string(it.Value) != "2" || it.Version != va {
		t.Fatalf("a after restart = %q@%d,%v; want 2@%d", it.Value, it.Version, ok, va)
	}
	it, ok = c.GetWithMeta("b")
	if !ok || string(it.Value) != "ttl" || it.Version != vb {
		t.Fatalf("b after restart = %q@%d,%v", it.Value, it.Version, ok)
	}
	if rem, has, ok := c.TTL("b"); !ok || !has || rem > 50*time.Minute || rem < 50*time.Minute-time.Millisecond {
		t.Fatalf("b's TTL after restart = %v,%v,%v; want 50m (the wall clock ran 10m)", rem, has, ok)
	}
	wantMiss(t, c, "c")
	wantMiss(t, c, "d")
	if c.version.Load() < last {
		t.Fatalf("version counter %d after restart, below %d handed out before", c.version.Load(), last)
	}
	if v := mustPut(t, c, "e", "new", PutOptions{}); v <= last || v <= vd {
		t.Fatalf("first version after restart %d, not above %d", v, last)
	}
	if _, err := c.Put("a", []byte("3"), PutOptions{IfVersion: &va}); err != nil {
		t.Fatalf("compare-and-set with the version read before the restart: %v", err)
	}
	stale := va
	if _, err := c.Put("a", []byte("4"), PutOptions{IfVersion: &stale}); !errors.Is(err, ErrConditionFailed) {
		t.Fatalf("stale compare-and-set after restart: %v", err)
	}
	e.clk.Advance(time.Hour)
	c = e.open()
	wantMiss(t, c, "b") // expired while the broker was down
	wantGet(t, c, "a", "3")
	if st := c.Stats(); st.Entries != 2 {
		t.Fatalf("%d entries loaded, want a and e", st.Entries)
	}
}

// Entries whose TTL ran out, before the restart or during it, are not
// loaded; those still live keep their absolute expiry.
func TestDurableExpiredNotLoaded(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "short", "s", PutOptions{TTL: new(time.Second)})
	mustPut(t, c, "mid", "m", PutOptions{TTL: new(time.Minute)})
	mustPut(t, c, "long", "l", PutOptions{TTL: new(time.Hour)})
	e.clk.Advance(2 * time.Second) // short expires while running (no record written)
	c = e.open()
	wantMiss(t, c, "short")
	wantGet(t, c, "mid", "m")
	e.clk.Advance(2 * time.Minute) // mid expires while "down"
	c = e.open()
	wantMiss(t, c, "mid")
	wantGet(t, c, "long", "l")
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("%d entries loaded, want only long", st.Entries)
	}
}

// Entries evicted for room are logged as removed: they do not come back
// after a restart, and the reloaded cache is within its capacity.
func TestDurableEvictedStayGone(t *testing.T) {
	size := entrySize("k00", 100)
	e := newDurableEnv(t, Config{MaxBytes: 10 * size, Shards: 4})
	c := e.open()
	val := string(make([]byte, 100))
	for i := range 50 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), val, PutOptions{})
	}
	if st := c.Stats(); st.Evictions < 40 {
		t.Fatalf("%d evictions, want at least 40", st.Evictions)
	}
	before := contents(c)
	c = e.open()
	sameContents(t, "after restart", contents(c), before)
	if st := c.Stats(); st.Evictions != 0 || st.Bytes > 10*size {
		t.Fatalf("after restart: %+v", st)
	}
}

// A capacity lowered across a restart is enforced at load, and the
// evictions are logged.
func TestDurableCapacityAtLoad(t *testing.T) {
	size := entrySize("k00", 10)
	e := newDurableEnv(t, Config{Shards: 4})
	c := e.open()
	for i := range 20 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "0123456789", PutOptions{})
	}
	e.cfg.MaxBytes = 5 * size
	c = e.open()
	if st := c.Stats(); st.Bytes > 5*size || st.Entries != 5 {
		t.Fatalf("after a restart with capacity %d: %+v", 5*size, st)
	}
	loaded := contents(c)
	e.cfg.MaxBytes = 0
	c = e.open()
	sameContents(t, "the evictions at load were logged", contents(c), loaded)
}

// Writing the same keys over and over compacts the log in the background:
// it ends near the live size, not the bytes written, and holds exactly
// the live entries.
func TestDurableCompactionBoundsLog(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	e.opts.CompactMinBytes = 16 << 10
	c := e.open()
	val := make([]byte, 100)
	var written int64
	for round := range 200 {
		for k := range 50 {
			copy(val, fmt.Sprintf("round %d", round))
			if _, err := c.Put(fmt.Sprintf("key%02d", k), val, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			written += recordSize(putHeader + 5 + len(val))
		}
		if round%7 == 0 {
			c.Delete(fmt.Sprintf("key%02d", round%50))
		}
	}
	want := contents(c)
	e.st.Close() // waits for a compaction in progress
	st := c.Stats()
	live := c.Stats().Bytes
	size := logSize(e.dir)
	// Bound: a compaction starts once 2× the live bytes (or the floor) were
	// appended; after it the log holds the snapshot, at most a segment of
	// older records, and what came since (writes go on during a
	// compaction, so allow twice the threshold).
	bound := 4*max(e.opts.CompactMinBytes, 2*live) + 2*e.opts.SegmentBytes
	if st.Compactions == 0 || size > bound {
		t.Fatalf("log %d bytes after writing %d (live %d, bound %d), %d compactions", size, written, live, bound, st.Compactions)
	}
	t.Logf("wrote %d record bytes; log %d bytes; live %d accounted bytes; %d compactions", written, size, live, st.Compactions)
	e.st = nil
	c = e.open()
	sameContents(t, "after compactions and a restart", contents(c), want)
}

// An explicit compaction leaves a log of the live entries only (deleted,
// expired and overwritten entries are gone from it) and the same state.
func TestDurableCompactKeepsLiveSet(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 8})
	e.opts.SegmentBytes = 1024
	c := e.open()
	for i := range 300 {
		mustPut(t, c, fmt.Sprintf("k%03d", i%100), fmt.Sprintf("v%d", i), PutOptions{})
	}
	for i := range 30 {
		c.Delete(fmt.Sprintf("k%03d", i))
	}
	for i := 30; i < 40; i++ {
		mustPut(t, c, fmt.Sprintf("k%03d", i), "short", PutOptions{TTL: new(time.Second)})
	}
	e.clk.Advance(time.Minute)
	want := contents(c)
	if len(want) != 60 {
		t.Fatalf("%d live entries, want 60", len(want))
	}
	before := logSize(e.dir)
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	after := logSize(e.dir)
	// The snapshot (its records are smaller than the entries' accounted
	// bytes), plus at most a segment's worth of older records sharing the
	// segment the snapshot starts in, plus segment headers.
	if live := c.Stats().Bytes; after >= before || after > live+2*e.opts.SegmentBytes {
		t.Fatalf("log %d bytes before compaction, %d after; live entries account %d", before, after, live)
	}
	c = e.open()
	sameContents(t, "after compaction and restart", contents(c), want)
	if v := mustPut(t, c, "fresh", "x", PutOptions{}); v <= maxVersion(want) {
		t.Fatalf("version %d after compaction, not above the log's", v)
	}
}

func maxVersion(m map[string]string) uint64 {
	var top uint64
	for _, v := range m {
		var n uint64
		if i := strings.LastIndexByte(v, '@'); i >= 0 {
			n, _ = strconv.ParseUint(v[i+1:], 10, 64)
		}
		top = max(top, n)
	}
	return top
}

// A compaction cut short (a crash after part of the snapshot, while other
// writes go on) leaves a log that loads the right state; so does one that
// completes while writes go on between its shards, whose old segments are
// dropped.
func TestDurableCrashMidCompaction(t *testing.T) {
	for _, crashAt := range []int{0, 3, 7, -1} { // -1: no crash
		t.Run(fmt.Sprint("crash after shard ", crashAt), func(t *testing.T) {
			e := newDurableEnv(t, Config{Shards: 8})
			e.opts.SegmentBytes = 512
			c := e.open()
			for i := range 400 {
				mustPut(t, c, fmt.Sprintf("k%02d", i%60), fmt.Sprintf("v%d", i), PutOptions{})
				if i%9 == 0 {
					c.Delete(fmt.Sprintf("k%02d", (i*7)%60))
				}
			}
			n := 0
			c.dur.compactHook = func(shard int) error {
				// Writes between shards: to keys whose shard is done, and
				// to keys whose shard is not.
				for j := range 5 {
					n++
					k := fmt.Sprintf("k%02d", (shard*11+j*13)%60)
					if j%2 == 0 {
						mustPut(t, c, k, fmt.Sprintf("during %d", n), PutOptions{})
					} else {
						c.Delete(k)
					}
				}
				if shard == crashAt {
					return errors.New("crash")
				}
				return nil
			}
			oldest := c.dur.log.Oldest()
			err := c.Compact()
			if crashAt >= 0 && err == nil {
				t.Fatal("Compact did not stop at the crash")
			}
			if crashAt < 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.dur.log.Oldest() == oldest {
					t.Fatal("the completed compaction dropped no segment")
				}
			}
			want := contents(c)
			c = e.open()
			sameContents(t, "after the compaction and a restart", contents(c), want)
		})
	}
}

// A torn last record (a crash in the middle of its write) is cut off by
// the log's recovery: the cache loads every write before it.
func TestDurableTornTail(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "a", "1", PutOptions{})
	mustPut(t, c, "b", "2", PutOptions{})
	mustPut(t, c, "c", "a value long enough to tear", PutOptions{})
	e.st.Close()
	e.st = nil
	segs, _ := filepath.Glob(filepath.Join(e.dir, "*.log"))
	sort.Strings(segs)
	active := segs[len(segs)-1]
	fi, err := os.Stat(active)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(active, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	c = e.open()
	wantGet(t, c, "a", "1")
	wantGet(t, c, "b", "2")
	wantMiss(t, c, "c")
	mustPut(t, c, "d", "after", PutOptions{})
	c = e.open()
	wantGet(t, c, "d", "after")
}

// A closed log refuses writes: puts and deletes fail, the entries stay.
func TestDurableClosedLogRefuses(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "k", "v", PutOptions{})
	e.st.Close()
	if _, err := c.Put("k", []byte("w"), PutOptions{}); !errors.Is(err, ErrStorage) || !errors.Is(err, commitlog.ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
	if ok, err := c.Remove("k"); ok || !errors.Is(err, ErrStorage) {
		t.Fatalf("remove after close: %v, %v", ok, err)
	}
	wantGet(t, c, "k", "v")
}

// Under SyncAlways concurrent writers share fsyncs and every write
// acknowledged is in the log.
func TestDurableSyncAlwaysConcurrent(t *testing.T) {
	e := newDurableEnv(t, Config{})
	e.opts.Sync = commitlog.SyncAlways
	c := e.open()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				mustPut(t, c, fmt.Sprintf("g%d-%d", g, i), "v", PutOptions{})
				if i%5 == 0 {
					c.Delete(fmt.Sprintf("g%d-%d", g, i-1))
				}
			}
		})
	}
	wg.Wait()
	if st := c.dur.log.Stats(); st.Synced < st.Next {
		t.Fatalf("synced %d below next %d after every write returned", st.Synced, st.Next)
	}
	want := contents(c)
	c = e.open()
	sameContents(t, "after restart", contents(c), want)
}

// A durable cache is defined by its declaration: Replace and Delete
// refuse it.
func TestDurableNotReplaced(t *testing.T) {
	e := newDurableEnv(t, Config{})
	e.open()
	if _, err := e.st.Replace(testScope, Config{MaxBytes: 1 << 20}); !errors.Is(err, ErrDurable) {
		t.Fatalf("Replace: %v", err)
	}
	if err := e.st.Delete(testScope); !errors.Is(err, ErrDurable) {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := e.st.CreateDurable(testScope, Config{}, e.opts); !errors.Is(err, ErrConfigConflict) {
		t.Fatalf("second CreateDurable: %v", err)
	}
}

// BenchmarkPutDurable is BenchmarkPut's overwrite loop on a durable cache
// (fsync interval): the cost of encoding and appending each record.
func BenchmarkPutDurable(b *testing.B) {
	st := NewStore(StoreOptions{SweepInterval: -1})
	defer st.Close()
	c, err := st.CreateDurable(testScope, Config{}, DurableOptions{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	val := make([]byte, 256)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := c.Put(keys[i&1023], val, PutOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// decodeRecord never panics, and what it accepts encodes back to the
// same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendPutRecord(nil, "k", []byte("v"), 7, 1234))
	f.Add(appendDelRecord(nil, "key", 9))
	f.Add(appendFloorRecord(nil, 11))
	f.Add([]byte{recPut, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRecord(p)
		if err != nil {
			return
		}
		var back []byte
		switch r.kind {
		case recPut:
			back = appendPutRecord(nil, string(r.key), r.value, r.version, r.expiresMs)
		case recDel:
			back = appendDelRecord(nil, string(r.key), r.version)
		case recFloor:
			back = appendFloorRecord(nil, r.version)
		}
		if string(back) != string(p) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", p, r, back)
		}
	})
}
