package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testwait"
)

// loadEnv is a Store whose durable loads can be held in the middle
// (Store.loadHook) and whose waits for a load are observed
// (Store.waitLoadHook), with a log of n entries in dir to load.
type loadEnv struct {
	t       *testing.T
	st      *Store
	opts    DurableOptions
	want    map[string]string // the log's entries: key → value
	entered chan Scope        // a load reached the hook
	release chan error        // lets a held load go on (or fail with the error)
	waiting chan Scope        // a call waits for a load
}

var loadScope = Scope{Tenant: "t1", Namespace: "default", Cache: "durable"}

func newLoadEnv(t *testing.T, n int, sopts StoreOptions) *loadEnv {
	t.Helper()
	e := &loadEnv{t: t, want: map[string]string{},
		opts:    DurableOptions{Dir: filepath.Join(t.TempDir(), "durable"), SegmentBytes: 4096, CompactMinBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler)},
		entered: make(chan Scope, 8), release: make(chan error), waiting: make(chan Scope, 8)}
	// Write the log to load, then close it (a broker's earlier run).
	pre := NewStore(StoreOptions{SweepInterval: -1})
	c, err := pre.CreateDurable(loadScope, Config{}, e.opts)
	if err != nil {
		t.Fatalf("CreateDurable (writing the log): %v", err)
	}
	for i := range n {
		k, v := fmt.Sprintf("k%04d", i), fmt.Sprintf("v%d", i)
		if _, err := c.Put(k, []byte(v), PutOptions{}); err != nil {
			t.Fatalf("Put: %v", err)
		}
		e.want[k] = v
	}
	pre.Close()

	sopts.SweepInterval = -1
	e.st = NewStore(sopts)
	e.st.loadHook = func(s Scope) error {
		e.entered <- s
		return <-e.release
	}
	e.st.waitLoadHook = func(s Scope) { e.waiting <- s }
	t.Cleanup(func() {
		// A test that failed while a load was held lets it finish.
		for {
			select {
			case e.release <- nil:
				continue
			default:
			}
			break
		}
		e.st.Close()
	})
	return e
}

// createAsync runs CreateDurable (ReplaceDurable when replace is set) of
// loadScope in a goroutine and returns where its result arrives.
func (e *loadEnv) createAsync(replace bool) <-chan createResult {
	out := make(chan createResult, 1)
	go func() {
		var r createResult
		if replace {
			r.c, r.err = e.st.ReplaceDurable(loadScope, Config{}, e.opts)
		} else {
			r.c, r.err = e.st.CreateDurable(loadScope, Config{}, e.opts)
		}
		out <- r
	}()
	return out
}

type createResult struct {
	c   *Cache
	err error
}

// held waits until a load reached the hook.
func (e *loadEnv) held() {
	e.t.Helper()
	select {
	case <-e.entered:
	case <-time.After(testwait.Liveness):
		e.t.Fatalf("no durable load reached its hook within %v", testwait.Liveness)
	}
}

// waited waits until a call waits for the load under loadScope.
func (e *loadEnv) waited(what string) {
	e.t.Helper()
	select {
	case s := <-e.waiting:
		if s != loadScope {
			e.t.Fatalf("%s: waits for the load of %s", what, s)
		}
	case <-time.After(testwait.Liveness):
		e.t.Fatalf("%s: did not wait for the load within %v", what, testwait.Liveness)
	}
}

// logFree reports whether the log directory can be opened, which it
// cannot while a log holds it open (its LOCK).
func logFree(t *testing.T, dir string) {
	t.Helper()
	lg, err := commitlog.Open(dir, commitlog.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("the log in %s is still open: %v", dir, err)
	}
	lg.Close()
}

// Loading a durable cache holds none of the Store's locks: lookups,
// reads and writes of the other caches, and the creation of another
// one, go on while a load is held in its middle; the store's budget
// counts the loading cache only once it is registered.
func TestCreateDurableLoadDoesNotBlockOtherCaches(t *testing.T) {
	e := newLoadEnv(t, 200, StoreOptions{MaxTotalBytes: 1 << 30})
	other := Scope{Tenant: "t2", Namespace: "default", Cache: "other"}
	oc, err := e.st.Create(other, Config{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := oc.Put("a", []byte("1"), PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	res := e.createAsync(false)
	e.held()

	done := make(chan struct{})
	var lookupErr error
	go func() {
		defer close(done)
		lookupErr = func() error {
			c, err := e.st.Get(other)
			if err != nil {
				return fmt.Errorf("Get of another cache: %w", err)
			}
			if v, ok := c.Get("a"); !ok || string(v) != "1" {
				return fmt.Errorf("Get a = %q, %v", v, ok)
			}
			if _, err := c.Put("b", []byte("2"), PutOptions{}); err != nil {
				return fmt.Errorf("Put: %w", err)
			}
			if _, err := e.st.Create(Scope{Tenant: "t3", Namespace: "default", Cache: "new"}, Config{}); err != nil {
				return fmt.Errorf("Create of a third cache: %w", err)
			}
			if used, _ := e.st.MemoryBytes(); used != oc.Stats().Bytes {
				return fmt.Errorf("budget used %d during the load, want the registered caches' %d", used, oc.Stats().Bytes)
			}
			return nil
		}()
	}()
	testwait.Within(t, "lookups of other caches while a durable cache loads", done)
	if lookupErr != nil {
		t.Fatal(lookupErr)
	}

	e.release <- nil
	r := <-res
	if r.err != nil {
		t.Fatalf("CreateDurable: %v", r.err)
	}
	if got, err := e.st.Get(loadScope); err != nil || got != r.c {
		t.Fatalf("Get after the load: %p, %v; want %p", got, err, r.c)
	}
	got := map[string]string{}
	for k, v := range contents(r.c) {
		got[k] = v[:len(e.want[k])]
	}
	sameContents(t, "loaded", got, e.want)
	if used, _ := e.st.MemoryBytes(); used != oc.Stats().Bytes+r.c.Stats().Bytes {
		t.Fatalf("budget used %d after the load, want %d + %d", used, oc.Stats().Bytes, r.c.Stats().Bytes)
	}
	checkInvariants(t, r.c)
}

// A lookup of the scope being loaded waits for the load and gets the
// loaded cache (not a *NotFoundError, which would let a broker
// auto-create an in-memory cache under its name).
func TestGetWaitsForTheLoadOfItsScope(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	res := e.createAsync(false)
	e.held()
	got := make(chan createResult, 1)
	go func() {
		c, err := e.st.Get(loadScope)
		got <- createResult{c, err}
	}()
	e.waited("Get")
	e.release <- nil
	r, g := <-res, <-got
	if r.err != nil || g.err != nil || g.c != r.c {
		t.Fatalf("CreateDurable %p, %v; Get during the load %p, %v", r.c, r.err, g.c, g.err)
	}
}

// Two creations of one durable cache: the second waits for the first's
// load (it never opens the log beside it) and then finds the scope
// taken, as it would have after the first.
func TestCreateDurableTwiceConcurrently(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	first := e.createAsync(false)
	e.held()
	second := e.createAsync(false)
	e.waited("the second CreateDurable")
	e.release <- nil
	r1, r2 := <-first, <-second
	if r1.err != nil {
		t.Fatalf("first CreateDurable: %v", r1.err)
	}
	if !errors.Is(r2.err, ErrConfigConflict) {
		t.Fatalf("second CreateDurable: %p, %v; want ErrConfigConflict", r2.c, r2.err)
	}
	// An in-memory Create waits too, and gets the durable cache.
	if c, err := e.st.Create(loadScope, Config{}); err != nil || c != r1.c {
		t.Fatalf("Create after the load: %p, %v; want %p", c, err, r1.c)
	}
}

// A load that fails frees its scope: the creation waiting for it then
// loads the log itself (which the failed load closed).
func TestCreateDurableFailedLoadFreesTheScope(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	first := e.createAsync(false)
	e.held()
	second := e.createAsync(false)
	e.waited("the second CreateDurable")
	boom := errors.New("boom")
	e.release <- boom
	if r := <-first; !errors.Is(r.err, boom) || r.c != nil {
		t.Fatalf("first CreateDurable: %p, %v; want boom", r.c, r.err)
	}
	e.held()
	e.release <- nil
	r := <-second
	if r.err != nil {
		t.Fatalf("second CreateDurable: %v", r.err)
	}
	if len(contents(r.c)) != len(e.want) {
		t.Fatalf("second load: %d entries, want %d", len(contents(r.c)), len(e.want))
	}
}

// A DeleteDurable during the load waits for it and then deletes the
// loaded cache: the log is closed, the scope is empty, and the cache
// refuses writes.
func TestDeleteDurableDuringLoad(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	res := e.createAsync(false)
	e.held()
	del := make(chan error, 1)
	go func() { del <- e.st.DeleteDurable(loadScope) }()
	e.waited("DeleteDurable")
	e.release <- nil
	r := <-res
	if r.err != nil {
		t.Fatalf("CreateDurable: %v", r.err)
	}
	if err := <-del; err != nil {
		t.Fatalf("DeleteDurable: %v", err)
	}
	if _, err := e.st.Get(loadScope); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after DeleteDurable: %v", err)
	}
	if _, err := r.c.Put("x", []byte("y"), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Put on the deleted cache: %v", err)
	}
	logFree(t, e.opts.Dir)
}

// A Delete during the load waits for it, and then refuses the durable
// cache as it always does.
func TestDeleteDuringLoad(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	res := e.createAsync(false)
	e.held()
	del := make(chan error, 1)
	go func() { del <- e.st.Delete(loadScope) }()
	e.waited("Delete")
	e.release <- nil
	if r := <-res; r.err != nil {
		t.Fatalf("CreateDurable: %v", r.err)
	}
	if err := <-del; !errors.Is(err, ErrDurable) {
		t.Fatalf("Delete: %v; want ErrDurable", err)
	}
}

// Close during a load waits for it and the load fails with ErrClosed:
// its log is closed before Close returns, and nothing is registered.
func TestCloseDuringLoad(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	res := e.createAsync(false)
	e.held()
	closed := make(chan struct{})
	go func() {
		e.st.Close()
		close(closed)
	}()
	testwait.Eventually(t, "Close starts", e.st.closing.Load)
	e.release <- nil
	r := <-res
	if !errors.Is(r.err, ErrClosed) || r.c != nil {
		t.Fatalf("CreateDurable across Close: %p, %v; want ErrClosed", r.c, r.err)
	}
	testwait.Within(t, "Close returns", closed)
	logFree(t, e.opts.Dir)
	if _, err := e.st.Get(loadScope); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Close: %v", err)
	}
}

// A lookup during ReplaceDurable's load waits for it and gets the
// durable cache: a write in between is not stored in the in-memory cache
// and then dropped at the swap. The in-memory cache serves until the
// swap (a request that resolved it before).
func TestReplaceDurableLookupWaitsForTheLoad(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	old, err := e.st.Create(loadScope, Config{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	res := e.createAsync(true)
	e.held()
	if _, err := old.Put("before", []byte("swap"), PutOptions{}); err != nil {
		t.Fatalf("Put on the in-memory cache during the load: %v", err)
	}
	got := make(chan createResult, 1)
	go func() {
		c, err := e.st.Get(loadScope)
		got <- createResult{c, err}
	}()
	e.waited("Get during ReplaceDurable's load")
	e.release <- nil
	r, g := <-res, <-got
	if r.err != nil {
		t.Fatalf("ReplaceDurable: %v", r.err)
	}
	if g.err != nil || g.c != r.c || !g.c.Durable() {
		t.Fatalf("Get during the load: %p, %v; want the durable %p", g.c, g.err, r.c)
	}
	if _, err := old.Put("x", []byte("y"), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Put on the replaced cache: %v", err)
	}
}

// Without hooks, under the race detector: concurrent creations of one
// durable cache, with Gets, DeleteDurables and a Close racing them.
// Exactly one creation wins each round; the log is never open twice (a
// second open would fail on its lock, not with a conflict); after Close
// no log stays open.
func TestCreateDurableRace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "durable")
	opts := DurableOptions{Dir: dir, SegmentBytes: 4096, CompactMinBytes: 1 << 30, Logger: slog.New(slog.DiscardHandler)}
	for round := range 20 {
		st := NewStore(StoreOptions{SweepInterval: -1})
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins []*Cache
		)
		for range 4 {
			wg.Go(func() {
				c, err := st.CreateDurable(loadScope, Config{}, opts)
				switch {
				case err == nil:
					mu.Lock()
					wins = append(wins, c)
					mu.Unlock()
				case errors.Is(err, ErrConfigConflict), errors.Is(err, ErrClosed):
				default:
					t.Errorf("round %d: CreateDurable: %v", round, err)
				}
			})
			wg.Go(func() {
				if c, err := st.Get(loadScope); err == nil && !c.Durable() {
					t.Errorf("round %d: Get found an in-memory cache", round)
				}
			})
		}
		if round%2 == 1 {
			wg.Go(func() {
				if err := st.DeleteDurable(loadScope); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrClosed) {
					t.Errorf("round %d: DeleteDurable: %v", round, err)
				}
			})
		}
		if round%4 == 3 {
			wg.Go(st.Close)
		}
		wg.Wait()
		st.Close()
		if len(wins) > 1 && round%2 == 0 {
			t.Fatalf("round %d: %d creations won, want at most 1", round, len(wins))
		}
		logFree(t, dir)
	}
}

// A durable cache created again under a scope whose DeleteDurable is
// still closing the log (waiting for a compaction to stop) waits for the
// close rather than find the directory open; a lookup meanwhile finds
// the scope empty at once.
func TestCreateDurableWaitsForTheDeletedLogToClose(t *testing.T) {
	e := newLoadEnv(t, 10, StoreOptions{})
	res := e.createAsync(false)
	e.held()
	e.release <- nil
	r := <-res
	if r.err != nil {
		t.Fatalf("CreateDurable: %v", r.err)
	}
	release, waiting, compacted := startPausedCompact(r.c)
	deleted := make(chan error, 1)
	go func() { deleted <- e.st.DeleteDurable(loadScope) }()
	testwait.Within(t, "DeleteDurable waits for the compaction", waiting)
	if _, err := e.st.Get(loadScope); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get while the deleted cache's log closes: %v", err)
	}
	again := e.createAsync(false)
	select {
	case s := <-e.waiting:
		if s != loadScope {
			t.Fatalf("waits for %s", s)
		}
	case r := <-again:
		t.Fatalf("CreateDurable while the deleted cache's log closes: %p, %v; want it to wait", r.c, r.err)
	}
	close(release)
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteDurable: %v", err)
	}
	if err := <-compacted; !errors.Is(err, ErrDeleted) {
		t.Fatalf("Compact stopped by DeleteDurable: %v", err)
	}
	e.held()
	e.release <- nil
	if r := <-again; r.err != nil || len(contents(r.c)) != len(e.want) {
		t.Fatalf("CreateDurable after DeleteDurable: %v", r.err)
	}
}
