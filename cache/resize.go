package cache

import "fmt"

// Resize sets the MaxBytes of the cache under scope and keeps its entries
// (and a durable cache's log): unlike Replace, nothing is dropped and the
// same *Cache stays registered. A capacity lowered below the cache's
// bytes evicts entries (of any key, the empty one included), least
// recently used first as for a Put that needs room (logged for a durable
// cache), until the cache fits, before Resize returns, or Resize fails;
// writes go on meanwhile and evict too. It returns the cache, or a
// *NotFoundError.
func (st *Store) Resize(scope Scope, maxBytes int64) (*Cache, error) {
	if err := scope.validate(); err != nil {
		return nil, err
	}
	if maxBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxBytes %d", ErrInvalidConfig, maxBytes)
	}
	st.lockScope(scope)
	if st.closed {
		st.mu.Unlock()
		return nil, ErrClosed
	}
	c, ok := st.caches[scope]
	if !ok {
		st.mu.Unlock()
		return nil, &NotFoundError{Scope: scope}
	}
	c.maxBytes.Store(maxBytes)
	st.mu.Unlock()
	if err := c.evictToCapacity(); err != nil {
		return c, fmt.Errorf("cache %s: evict to the new capacity %d: %w", scope, maxBytes, err)
	}
	return c, nil
}

// DeleteDurable deletes the cache under scope, durable or in memory, or
// returns a *NotFoundError. It is Delete for an in-memory cache; a durable
// one is unregistered, its writes stopped and its log closed before its
// entries are dropped: a running compaction, background or Compact's, is
// stopped at the end of the shard it is on and waited for first (it
// fails with ErrDeleted, as a Compact after it does). The log's files
// stay: the caller removes its directory (DurableOptions.Dir), so that a
// cache created again under the scope does not load them. Until the log
// is closed a change to the scope (CreateDurable again) waits, while Get
// finds it empty.
func (st *Store) DeleteDurable(scope Scope) error {
	st.lockScope(scope)
	c, ok := st.caches[scope]
	if !ok {
		st.mu.Unlock()
		return &NotFoundError{Scope: scope}
	}
	if c.dur != nil && st.closed {
		st.mu.Unlock() // Close closes the log
		return ErrClosed
	}
	st.removeLocked(c)
	if c.dur == nil {
		st.mu.Unlock()
		st.drop(c)
		return nil
	}
	// The scope stays reserved until the log is closed: a durable cache
	// created again under it waits, rather than find its directory open.
	l := &load{done: make(chan struct{}), deleting: true}
	st.loading[scope] = l
	st.mu.Unlock()
	err := c.dur.close()
	st.mu.Lock()
	st.endLoadLocked(scope, l)
	st.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("cache %s: close log: %w", scope, err)
	}
	st.drop(c)
	return err
}

// evictToCapacity evicts entries (logged for a durable cache), least
// recently used first as for a Put that needs room, until the cache fits
// its capacity as it is now (a later Resize may have raised it) or
// nothing is left to evict. It fails with ErrDeleted once the cache is
// deleted, or with the error of an eviction its log refused.
func (c *Cache) evictToCapacity() error {
	for {
		if limit := c.maxBytes.Load(); limit == 0 || c.bytes.Load() <= limit {
			return nil
		}
		if c.deleted.Load() {
			return ErrDeleted
		}
		found, err := c.evictOne(spare{}) // no write to spare: "" too is evicted
		if err != nil && c.deleted.Load() {
			return ErrDeleted // its log closed by the deletion
		}
		if err != nil || !found {
			return err
		}
	}
}
