package cache

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Resize keeps a durable cache's entries and log: a raised capacity
// changes nothing else, a lowered one evicts down to it, logged, so the
// evicted entries stay gone after a restart; the same *Cache stays
// registered, with its versions and counters.
func TestResizeDurableKeepsEntries(t *testing.T) {
	size := entrySize("k00", 10)
	e := newDurableEnv(t, Config{MaxBytes: 20 * size, Shards: 4})
	c := e.open()
	for i := range 20 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "0123456789", PutOptions{})
	}
	before := contents(c)

	up, err := e.st.Resize(testScope, 40*size)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, up)
	sameContents(t, "raised", contents(up), before)
	if got, _ := e.st.Get(testScope); got != up || up != c || up.Config().MaxBytes != 40*size || up.Config().Shards != 4 {
		t.Fatalf("after Resize: registered %p (want %p, the cache before), config %+v", got, up, up.Config())
	}
	if v := mustPut(t, up, "k00", "0123456789", PutOptions{}); v <= maxVersion(before) {
		t.Fatalf("version %d after the resize, want above %d", v, maxVersion(before))
	}
	if st := up.Stats(); st.Puts != 21 {
		t.Fatalf("puts %d after the resize, want 21 (counters kept)", st.Puts)
	}

	down, err := e.st.Resize(testScope, 5*size)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, down)
	if st := down.Stats(); st.Entries != 5 || st.Bytes > 5*size || st.Evictions != 15 {
		t.Fatalf("lowered to 5 entries: %+v", st)
	}
	kept := contents(down)
	e.cfg.MaxBytes = 0 // the log alone decides what comes back
	sameContents(t, "after a restart", contents(e.open()), kept)
}

// Resize of an in-memory cache keeps its entries too (Replace drops them).
func TestResizeInMemory(t *testing.T) {
	size := entrySize("k00", 10)
	st := NewStore(StoreOptions{SweepInterval: -1})
	t.Cleanup(st.Close)
	c, err := st.Create(testScope, Config{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "0123456789", PutOptions{})
	}
	c, err = st.Resize(testScope, 4*size)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, c)
	if s := c.Stats(); s.Entries != 4 || s.Evictions != 6 {
		t.Fatalf("after Resize: %+v", s)
	}
	if _, err := st.Resize(Scope{Tenant: "t", Namespace: "n", Cache: "none"}, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resize of a missing cache: %v", err)
	}
	if _, err := st.Resize(testScope, -1); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Resize to -1: %v", err)
	}
}

// Writes and deletes while the capacity goes up and down: the byte count
// is the entries', within the capacity once the last resize is done, and
// the log holds what the cache does.
func TestResizeConcurrentWrites(t *testing.T) {
	size := entrySize("k000", 10)
	e := newDurableEnv(t, Config{MaxBytes: 100 * size, Shards: 4})
	e.open()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := e.st.Get(testScope)
				if err != nil {
					t.Error(err)
					return
				}
				key := fmt.Sprintf("k%d%02d", w, i%100)
				if _, err := c.Put(key, []byte("0123456789"), PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					c.Delete(key)
				}
			}
		})
	}
	for i := range 50 {
		if _, err := e.st.Resize(testScope, int64(20+i%3*40)*size); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	c, _ := e.st.Get(testScope)
	checkInvariants(t, c)
	live := contents(c)
	e.cfg.MaxBytes = 0
	sameContents(t, "after a restart", contents(e.open()), live)
}

// DeleteDurable closes the log (the directory can then be removed) and a
// cache created again on the same directory starts empty; it deletes an
// in-memory cache as Delete does.
func TestDeleteDurable(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "k", "v", PutOptions{})
	if err := e.st.DeleteDurable(testScope); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Get(testScope); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after DeleteDurable: %v", err)
	}
	if _, err := c.Put("k", []byte("w"), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("write after DeleteDurable: %v", err)
	}
	if err := os.RemoveAll(e.dir); err != nil { // the log's files are closed (Windows refuses otherwise)
		t.Fatal(err)
	}
	c, err := e.st.CreateDurable(testScope, Config{}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().Entries; n != 0 {
		t.Fatalf("created again: %d entries, want 0", n)
	}
	if err := e.st.DeleteDurable(Scope{Tenant: "t", Namespace: "n", Cache: "none"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteDurable of a missing cache: %v", err)
	}
	mem := Scope{Tenant: "t", Namespace: "n", Cache: "mem"}
	if _, err := e.st.Create(mem, Config{}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteDurable(mem); err != nil {
		t.Fatal(err)
	}
	e.st.Close()
	if err := e.st.DeleteDurable(testScope); !errors.Is(err, ErrClosed) {
		t.Fatalf("DeleteDurable after Close: %v", err)
	}
}

// ReplaceDurable puts a durable cache loaded from its log in place of an
// in-memory one; it refuses to replace a durable cache.
func TestReplaceDurable(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "k", "v", PutOptions{})
	want := contents(c)
	e.st.Close()
	e.st = NewStore(StoreOptions{Clock: e.clk, SweepInterval: -1})
	mem, err := e.st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	v := mustPut(t, mem, "m", "x", PutOptions{})
	d, err := e.st.ReplaceDurable(testScope, Config{}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	sameContents(t, "replaced", contents(d), want)
	if _, err := mem.Put("m", []byte("y"), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("write to the replaced cache: %v", err)
	}
	if got := mustPut(t, d, "n", "z", PutOptions{}); got <= v {
		t.Fatalf("version %d, want above the in-memory cache's %d", got, v)
	}
	if _, err := e.st.ReplaceDurable(testScope, Config{}, e.opts); !errors.Is(err, ErrDurable) {
		t.Fatalf("ReplaceDurable of a durable cache: %v", err)
	}
}

// Resize evicts down to the new capacity before it returns, the entry of
// the empty key included (eviction leaves alone only the key a write is
// writing, and a Resize writes none), in memory and on a durable cache,
// whose eviction is logged.
func TestResizeEvictsTheEmptyKey(t *testing.T) {
	size := entrySize("", 100)
	check := func(t *testing.T, st *Store, c *Cache) {
		t.Helper()
		mustPut(t, c, "", strings.Repeat("v", 100), PutOptions{})
		mustPut(t, c, "a", "v", PutOptions{})
		if _, err := st.Resize(c.Scope(), size-1); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Bytes > size-1 {
			t.Fatalf("right after Resize to %d: %d bytes stored (%d entries)", size-1, s.Bytes, s.Entries)
		}
		checkInvariants(t, c)
		if _, ok := c.Get(""); ok {
			t.Fatal("the empty key's entry, larger than the new capacity, is still there")
		}
	}
	t.Run("memory", func(t *testing.T) {
		st := NewStore(StoreOptions{SweepInterval: -1})
		t.Cleanup(st.Close)
		c, err := st.Create(testScope, Config{Shards: 4})
		if err != nil {
			t.Fatal(err)
		}
		check(t, st, c)
	})
	t.Run("durable", func(t *testing.T) {
		e := newDurableEnv(t, Config{Shards: 4})
		c := e.open()
		check(t, e.st, c)
		if _, ok := e.open().Get(""); ok {
			t.Fatal("the evicted empty key came back after a restart: its eviction was not logged")
		}
	})
}

// DeleteDurable waits for a Compact called directly (not only for the
// background one) and stops it at the end of the shard it is on: once it
// returns, nothing appends to the log, so the caller can remove the
// directory. The compaction it stopped and a Compact after it fail with
// ErrDeleted, not with a *StorageError of the closed log counted as a
// write error.
func TestDeleteDurableStopsADirectCompact(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	c := e.open()
	for i := range 40 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), "v", PutOptions{})
	}
	release, waiting, compacted := startPausedCompact(c)
	deleted := make(chan error, 1)
	go func() { deleted <- e.st.DeleteDurable(testScope) }()
	select {
	case err := <-deleted:
		close(release)
		<-compacted
		t.Fatalf("DeleteDurable returned (%v) while a Compact was running: it closed the log under it", err)
	case <-waiting:
	}
	close(release)
	if err := <-compacted; !errors.Is(err, ErrDeleted) {
		t.Fatalf("the Compact that DeleteDurable stopped: %v, want ErrDeleted", err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if err := c.Compact(); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Compact after DeleteDurable: %v, want ErrDeleted", err)
	}
	if n := c.Stats().LogWriteErrors; n != 0 {
		t.Fatalf("%d log write errors counted for compactions of a deleted cache", n)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the log's directory after its removal: %v", err)
	}
}

// Store.Close waits for a Compact called directly too, and a Compact
// after it fails with ErrClosed.
func TestCloseStopsADirectCompact(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	c := e.open()
	mustPut(t, c, "k", "v", PutOptions{})
	release, waiting, compacted := startPausedCompact(c)
	closed := make(chan struct{})
	go func() { e.st.Close(); close(closed) }()
	select {
	case <-closed:
		close(release)
		<-compacted
		t.Fatal("Store.Close returned while a Compact was running: it closed the log under it")
	case <-waiting:
	}
	close(release)
	if err := <-compacted; !errors.Is(err, ErrClosed) {
		t.Fatalf("the Compact that Close stopped: %v, want ErrClosed", err)
	}
	<-closed
	if err := c.Compact(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compact after Close: %v, want ErrClosed", err)
	}
	if n := c.Stats().LogWriteErrors; n != 0 {
		t.Fatalf("%d log write errors counted for compactions after Close", n)
	}
}

// startPausedCompact runs c.Compact in a goroutine and returns once it is
// paused after its first shard: closing release lets it go on, waiting is
// closed when the log's close starts waiting for it, and compacted gets
// Compact's result.
func startPausedCompact(c *Cache) (release, waiting chan struct{}, compacted chan error) {
	entered := make(chan struct{})
	release, waiting = make(chan struct{}), make(chan struct{})
	c.dur.compactHook = func(shard int) error {
		if shard == 0 {
			close(entered)
			<-release
		}
		return nil
	}
	c.dur.closeHook = func() { close(waiting) }
	compacted = make(chan error, 1)
	go func() { compacted <- c.Compact() }()
	<-entered
	return release, waiting, compacted
}
