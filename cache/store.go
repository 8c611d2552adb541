package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// Store is the registry of caches by scope, and runs their background
// sweep. It is safe for concurrent use. The broker resolves a scope once
// per request with Get and then works on the *Cache.
type Store struct {
	opts StoreOptions

	mu     sync.RWMutex
	caches map[Scope]*Cache
	// loading reserves the scopes of the durable caches whose logs are
	// being loaded (createDurable) or closed (DeleteDurable) without mu:
	// see load.
	loading map[Scope]*load
	closed  bool
	// closing mirrors closed, readable without mu: a load in progress
	// stops replaying its log once it is set (Close waits for it).
	closing atomic.Bool
	// versionFloor is the highest version a deleted cache handed out: a
	// cache created later starts above it, so a version read from a
	// deleted cache never matches an entry of its successor.
	versionFloor uint64 // guarded by mu

	// list is the caches in creation order, replaced on Create and Delete,
	// so the sweeper walks it without holding mu.
	list      atomic.Pointer[[]*Cache]
	budget    *budget // StoreOptions.MaxTotalBytes; nil when negative
	sweepMu   sync.Mutex
	sweepNext int // guarded by sweepMu: the cache the next sweep starts at

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// dropHook, set by tests, runs before the entries of a cache that was
	// deleted or replaced are dropped (drop), after mu is released.
	dropHook func(old *Cache)
	// loadHook, set by tests, runs in the middle of a durable cache's
	// load, after its log's replay; an error fails the load.
	loadHook func(scope Scope) error
	// waitLoadHook, set by tests, runs when a call waits for the load of
	// a durable cache under scope.
	waitLoadHook func(scope Scope)
}

// NewStore returns an empty Store and starts its background sweep (unless
// opts.SweepInterval is negative). Call Close to stop it.
func NewStore(opts StoreOptions) *Store {
	st := &Store{
		opts:    opts.withDefaults(),
		caches:  make(map[Scope]*Cache),
		loading: make(map[Scope]*load),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	st.list.Store(new([]*Cache))
	if st.opts.MaxTotalBytes > 0 {
		st.budget = &budget{limit: st.opts.MaxTotalBytes, list: &st.list}
	}
	if st.opts.SweepInterval > 0 {
		go st.sweepLoop()
	} else {
		close(st.done)
	}
	return st
}

// Create registers a cache under scope and returns it. Creating an existing
// scope with the same Config (after defaults) returns the existing cache;
// with another Config it fails with a *ConfigConflictError.
func (st *Store) Create(scope Scope, cfg Config) (*Cache, error) {
	cfg, err := checked(scope, cfg)
	if err != nil {
		return nil, err
	}
	st.lockScope(scope)
	defer st.mu.Unlock()
	if st.closed {
		return nil, ErrClosed
	}
	if c, ok := st.caches[scope]; ok {
		if cur := c.Config(); cur != cfg {
			return nil, &ConfigConflictError{Scope: scope, Existing: cur, Requested: cfg}
		}
		return c, nil
	}
	return st.addLocked(scope, cfg), nil
}

// Replace registers a new, empty cache with cfg under scope in place of
// the existing one (if any) in one step, for a configuration change: no
// request sees the scope without a cache in between (which, with
// auto-creation, would create one with the default configuration). The
// old cache is deleted as by Delete.
func (st *Store) Replace(scope Scope, cfg Config) (*Cache, error) {
	cfg, err := checked(scope, cfg)
	if err != nil {
		return nil, err
	}
	st.lockScope(scope)
	if st.closed {
		st.mu.Unlock()
		return nil, ErrClosed
	}
	old := st.caches[scope]
	if old != nil && old.dur != nil {
		st.mu.Unlock()
		return nil, &DurableError{Scope: scope, Op: "replace"}
	}
	if old != nil {
		st.removeLocked(old)
	}
	c := st.addLocked(scope, cfg)
	st.mu.Unlock()
	if old != nil {
		st.drop(old)
	}
	return c, nil
}

// checked validates scope and returns cfg with its defaults applied.
func checked(scope Scope, cfg Config) (Config, error) {
	if err := scope.validate(); err != nil {
		return Config{}, err
	}
	return cfg.withDefaults()
}

// addLocked registers a new cache under scope. Called with mu held.
func (st *Store) addLocked(scope Scope, cfg Config) *Cache {
	c := newCache(scope, cfg, st.opts.Clock, max(st.versionFloor, clockVersion(st.opts.Clock)), st.budget)
	st.registerLocked(c)
	return c
}

// registerLocked adds c's entries' bytes to the Store's budget and c to
// the registry. Called with mu held, before c is handed out.
func (st *Store) registerLocked(c *Cache) {
	c.count()
	st.caches[c.scope] = c
	old := *st.list.Load()
	list := make([]*Cache, len(old), len(old)+1)
	copy(list, old)
	list = append(list, c)
	st.list.Store(&list)
}

// removeLocked stops c's writes, takes its bytes out of the Store's
// budget and unregisters it; the caller clears its entries after
// releasing mu. Called with mu held, so that Get and Create never hand
// out a deleted cache: once closeWrites returns, no write is in progress
// on c and none will take a version, so c's last version is final before
// a successor can be created under its scope.
func (st *Store) removeLocked(c *Cache) {
	c.closeWrites()
	st.versionFloor = max(st.versionFloor, c.version.Load())
	delete(st.caches, c.scope)
	old := *st.list.Load()
	list := make([]*Cache, 0, len(old))
	for _, x := range old {
		if x != c {
			list = append(list, x)
		}
	}
	st.list.Store(&list)
}

// Get returns the cache registered under scope, or a *NotFoundError.
// While a durable cache is being loaded under scope (CreateDurable,
// ReplaceDurable), Get of that scope waits for the load and then returns
// the loaded cache (or, if the load failed, what is registered then), as
// a request would have got it right after the load; other scopes do not
// wait.
func (st *Store) Get(scope Scope) (*Cache, error) {
	for {
		st.mu.RLock()
		c, ok := st.caches[scope]
		var l *load
		if len(st.loading) > 0 {
			if l = st.loading[scope]; l != nil && l.deleting {
				l = nil // the scope is empty (and stays so until l ends)
			}
		}
		st.mu.RUnlock()
		switch {
		case l != nil:
			st.waitLoad(scope, l)
		case ok:
			return c, nil
		default:
			return nil, &NotFoundError{Scope: scope}
		}
	}
}

// Delete unregisters the cache under scope and drops its entries, or
// returns a *NotFoundError. Later Puts on a retained *Cache fail with
// ErrDeleted and its Gets miss.
func (st *Store) Delete(scope Scope) error {
	st.lockScope(scope)
	c, ok := st.caches[scope]
	if !ok {
		st.mu.Unlock()
		return &NotFoundError{Scope: scope}
	}
	if c.dur != nil {
		st.mu.Unlock()
		return &DurableError{Scope: scope, Op: "delete"}
	}
	st.removeLocked(c)
	st.mu.Unlock()
	st.drop(c)
	return nil
}

// drop drops the entries of c, which removeLocked unregistered (and took
// out of the budget), outside mu: O(entries).
func (st *Store) drop(c *Cache) {
	if st.dropHook != nil {
		st.dropHook(c)
	}
	c.clear()
}

// clockVersion is where the versions of a cache created now start: the
// clock in microseconds since the Unix epoch (0 before it). A broker that
// restarts thus hands out versions above those it handed out before, as
// long as its caches took less than a million writes per second on average
// since it started, so a version read before a restart does not match an
// entry written after it. Microseconds keep versions below 2^53 (exact in
// JSON numbers read as doubles) for two centuries.
func clockVersion(clk Clock) uint64 {
	return uint64(max(clk.Now().UnixMicro(), 0))
}

// Caches returns the registered caches in creation order.
func (st *Store) Caches() []*Cache {
	list := *st.list.Load()
	out := make([]*Cache, len(list))
	copy(out, list)
	return out
}

// MemoryBytes returns the bytes accounted to all the Store's caches
// together and their bound, StoreOptions.MaxTotalBytes (0: no bound).
// Without a bound it sums the caches' Bytes.
func (st *Store) MemoryBytes() (used, limit int64) {
	if st.budget != nil {
		return st.budget.used.Load(), st.budget.limit
	}
	for _, c := range *st.list.Load() {
		used += c.bytes.Load()
	}
	return used, 0
}

// Len returns how many caches are registered.
func (st *Store) Len() int { return len(*st.list.Load()) }

// Sweep runs one sweep budget by hand: it visits at most max slots across
// the caches and returns how many expired entries it removed. Caches take
// turns: a call continues the pass over the cache where the previous one
// ran out of budget, then moves to the next caches, each at most once per
// call. (A background tick may run several budgets: see sweepTick.)
func (st *Store) Sweep(max int) int {
	_, removed := st.sweep(max)
	return removed
}

// sweep is Sweep; it also reports the slots it visited.
func (st *Store) sweep(max int) (visited, removed int) {
	st.sweepMu.Lock()
	defer st.sweepMu.Unlock()
	list := *st.list.Load()
	for range len(list) {
		if max <= 0 {
			break
		}
		if st.sweepNext >= len(list) {
			st.sweepNext = 0
		}
		v, r, passDone := list[st.sweepNext].sweep(max)
		max -= v
		visited += v
		removed += r
		if !passDone {
			break // out of budget mid-pass: the next tick resumes here
		}
		st.sweepNext++
	}
	return visited, removed
}

// sweepTick runs one background tick: a budget of SweepMaxPerTick slots,
// then more while a quarter or more of the slots visited held expired
// entries, as Redis's active expiry does: keys with short TTLs written
// faster than the budget a tick must not pile up. A tick sweeps for at
// most a tenth of SweepInterval.
func (st *Store) sweepTick() {
	start := time.Now()
	for {
		visited, removed := st.sweep(st.opts.SweepMaxPerTick)
		if visited == 0 || removed*4 < visited || time.Since(start) >= st.opts.SweepInterval/10 {
			return
		}
	}
}

func (st *Store) sweepLoop() {
	defer close(st.done)
	t := time.NewTicker(st.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-st.stop:
			return
		case <-t.C:
			st.sweepTick()
		}
	}
}

// Close stops the background sweep and waits for it to return, and for
// the durable caches being loaded (their loads stop and fail with
// ErrClosed, their logs closed), then closes the logs of the durable
// caches (after stopping any compaction running at the end of its shard
// and waiting for it; a Compact fails with ErrClosed from then on).
// Later Creates fail with ErrClosed; existing caches keep working (expiry
// is then lazy only), but writes to durable ones fail with a
// *StorageError. Close is idempotent.
func (st *Store) Close() {
	st.mu.Lock()
	st.closed = true
	st.closing.Store(true)
	loads := make([]*load, 0, len(st.loading))
	for _, l := range st.loading {
		loads = append(loads, l)
	}
	st.mu.Unlock()
	// A load in progress no longer registers its cache: it closes its
	// log, then ends (as does a DeleteDurable's close of its log).
	for _, l := range loads {
		<-l.done
	}
	st.stopOnce.Do(func() {
		close(st.stop)
		<-st.done
		for _, c := range *st.list.Load() {
			if c.dur == nil {
				continue
			}
			if err := c.dur.close(); err != nil {
				c.dur.logger.Error("cache log close", "cache", c.scope.String(), "err", err)
			}
		}
	})
	<-st.done
}

// CreateDurable opens (creating if needed) the log in opts.Dir, loads the
// cache it holds (see the package documentation) and registers it under
// scope. The scope must not be registered yet. Its writes are logged;
// Store.Close closes the log. Replace and Delete refuse a durable cache:
// Resize changes its capacity, DeleteDurable deletes it.
//
// The load runs without the Store's lock: the other scopes' lookups and
// changes go on meanwhile. The scope is reserved from the start: Get of
// it waits for the load, and so does any change to it (Create, Replace,
// Delete, Resize, another CreateDurable, which then finds it taken: a
// *ConfigConflictError). A load that fails leaves the scope as it was,
// its log closed. Close during a load stops it (ErrClosed) and waits.
func (st *Store) CreateDurable(scope Scope, cfg Config, opts DurableOptions) (*Cache, error) {
	c, _, err := st.createDurable(scope, cfg, opts, false)
	return c, err
}

// ReplaceDurable is CreateDurable in place of the in-memory cache under
// scope, if any, in one step as Replace: the in-memory cache is deleted
// (its entries dropped) once the log is loaded, and no request sees the
// scope without a cache in between (a Get of the scope waits for the
// load, as CreateDurable's). A durable cache under scope is refused with
// a *DurableError.
func (st *Store) ReplaceDurable(scope Scope, cfg Config, opts DurableOptions) (*Cache, error) {
	c, old, err := st.createDurable(scope, cfg, opts, true)
	if old != nil {
		st.drop(old)
	}
	return c, err
}
