package cache

import "fmt"

// load reserves a scope in Store.loading while the log of a durable
// cache under it is opened and loaded (createDurable), or closed
// (DeleteDurable), without the Store's lock: the other scopes' lookups
// go on meanwhile (a lookup of the scope waits for a load: Get). A
// load's reservation lasts from before the log is opened until the cache
// is registered or the load has failed and closed the log; a deletion's,
// from the cache's unregistration until its log is closed. So one log directory is never open twice, and nothing else
// registers or unregisters a cache under the scope meanwhile. done is
// closed when the reservation ends.
type load struct {
	done chan struct{}
	// deleting: the reservation of a deletion. The scope is empty: Get
	// does not wait for it.
	deleting bool
}

// lockScope takes mu for writing once no durable cache's log is being
// loaded or closed under scope (load): a change to the scope's
// registration (Create, Replace, Delete, Resize, another durable
// creation) waits for the load and then runs as if it came after it, as
// it did when a load held mu.
func (st *Store) lockScope(scope Scope) {
	for {
		st.mu.Lock()
		l := st.loading[scope]
		if l == nil {
			return
		}
		st.mu.Unlock()
		st.waitLoad(scope, l)
	}
}

// waitLoad waits for the reservation l of scope to end. Called without
// mu.
func (st *Store) waitLoad(scope Scope, l *load) {
	if st.waitLoadHook != nil {
		st.waitLoadHook(scope)
	}
	<-l.done
}

// endLoadLocked releases the reservation l of scope. Called with mu
// held, once the loaded cache is registered or its log closed.
func (st *Store) endLoadLocked(scope Scope, l *load) {
	delete(st.loading, scope)
	close(l.done)
}

// createDurable is CreateDurable, or ReplaceDurable when replace is set:
// then old is the in-memory cache it unregistered, for the caller to
// clear. The log is loaded without mu, under a reservation of the scope
// (load); the cache is registered under mu once it is loaded.
func (st *Store) createDurable(scope Scope, cfg Config, opts DurableOptions, replace bool) (_, old *Cache, _ error) {
	cfg, err := checked(scope, cfg)
	if err != nil {
		return nil, nil, err
	}
	l, old, floor, err := st.reserveLoad(scope, cfg, replace)
	if err != nil {
		return nil, nil, err
	}
	c, err := st.loadDurable(scope, cfg, opts, floor)
	if err != nil {
		st.mu.Lock()
		st.endLoadLocked(scope, l)
		st.mu.Unlock()
		return nil, nil, err
	}
	st.mu.Lock()
	if st.closed {
		// Close waits for this load (done) and closes only registered
		// caches' logs: close this one before the load ends.
		st.mu.Unlock()
		closeLog(c)
		st.mu.Lock()
		st.endLoadLocked(scope, l)
		st.mu.Unlock()
		return nil, nil, ErrClosed
	}
	// The reservation kept old registered under scope (Replace and Delete
	// of the scope waited).
	if old != nil {
		// Its writes stop here; versions continue above its last one.
		st.removeLocked(old)
	}
	// Above every deleted cache's versions, those deleted during the
	// load included.
	c.version.Store(max(c.version.Load(), st.versionFloor))
	st.registerLocked(c)
	st.endLoadLocked(scope, l)
	st.mu.Unlock()
	return c, old, nil
}

// reserveLoad reserves scope for a durable cache's load, unless the
// Store is closed or the scope holds a cache (an in-memory one is old,
// when replace is set). It returns the version floor the load starts
// above.
func (st *Store) reserveLoad(scope Scope, cfg Config, replace bool) (l *load, old *Cache, floor uint64, err error) {
	st.lockScope(scope)
	defer st.mu.Unlock()
	if st.closed {
		return nil, nil, 0, ErrClosed
	}
	old = st.caches[scope]
	switch {
	case old != nil && !replace:
		return nil, nil, 0, &ConfigConflictError{Scope: scope, Existing: old.Config(), Requested: cfg}
	case old != nil && old.dur != nil:
		return nil, nil, 0, &DurableError{Scope: scope, Op: "replace"}
	}
	l = &load{done: make(chan struct{})}
	st.loading[scope] = l
	return l, old, st.versionFloor, nil
}

// loadDurable opens the log in opts.Dir and loads the cache it holds,
// which nobody else sees yet: its bytes count in the Store's budget only
// once it is registered. It runs without mu, and stops with ErrClosed
// once the Store is closing. On failure the log is closed.
func (st *Store) loadDurable(scope Scope, cfg Config, opts DurableOptions, floor uint64) (*Cache, error) {
	d, err := openDurable(opts)
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", scope, err)
	}
	// The budget is set before anything (the load's evictions, a
	// compaction they start) runs; the bytes count from registerLocked.
	c := newCache(scope, cfg, st.opts.Clock, 0, st.budget)
	c.dur = d
	if err := st.fill(c, floor, opts.Dir); err != nil {
		closeLog(c)
		return nil, err
	}
	return c, nil
}

// fill replays c's log into c, evicts it down to its capacity, and starts
// a compaction of a log much larger than its live entries.
func (st *Store) fill(c *Cache, floor uint64, dir string) error {
	maxVer, err := c.replay(st.closing.Load)
	if err != nil {
		return err
	}
	c.version.Store(max(floor, clockVersion(st.opts.Clock), maxVer))
	if st.loadHook != nil {
		if err := st.loadHook(c.scope); err != nil {
			return err
		}
	}
	if st.closing.Load() {
		return ErrClosed
	}
	// A capacity lowered since the log was written: evict (and log it)
	// down to it now.
	if err := c.evictToCapacity(); err != nil {
		return fmt.Errorf("cache %s: evict to capacity at load: %w", c.scope, err)
	}
	// The log as opened counts as appended: a log much larger than the
	// live entries (compacted too little before a restart) is compacted.
	d := c.dur
	d.appended.Store(logSize(dir))
	if d.appended.Load() > max(d.compactMin, 2*c.bytes.Load()) {
		c.startCompaction()
	}
	return nil
}

// closeLog closes the log of a durable cache whose load did not register
// it (stopping a compaction the load started).
func closeLog(c *Cache) {
	if err := c.dur.close(); err != nil {
		c.dur.logger.Error("cache log close", "cache", c.scope.String(), "err", err)
	}
}
