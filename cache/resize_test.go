package cache

import (
	"errors"
	"fmt"
	"os"
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
