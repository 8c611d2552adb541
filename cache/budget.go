package cache

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// budget is a Store's memory budget (StoreOptions.MaxTotalBytes): the
// bytes accounted to all its caches together, in the same units as each
// cache's own MaxBytes. A cache's bytes count in used from the moment it
// is registered (Store.registerLocked, which adds what a durable cache
// loaded) to the moment it is unregistered (Cache.closeWrites, which
// takes them all back at once), and every cache adds its entries' bytes
// to used meanwhile as it adds them to its own counter. So used is
// always the sum of the registered caches' Bytes: a deleted or replaced
// cache's entries, dropped after it is unregistered, hold none of the
// budget, and a write that needs room never waits for them.
type budget struct {
	limit int64
	used  atomic.Int64
	list  *atomic.Pointer[[]*Cache] // the Store's caches, for eviction

	// waitHook, set by tests, runs each time a write that needs room
	// finds nothing to evict and waits for the writes in progress.
	waitHook func()
}

// reserve adds n > 0 to used if the result stays within limit, and
// reports whether it did.
func (b *budget) reserve(n int64) bool {
	for {
		cur := b.used.Load()
		if cur+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// room says which bound refused a reservation.
type room uint8

const (
	roomOK    room = iota // reserved
	roomCache             // the cache's MaxBytes
	roomStore             // the Store's MaxTotalBytes
)

// budgetSamples is how many caches eviction for the Store's budget
// samples to pick the largest one.
const budgetSamples = 5

// inBudget returns the budget c's bytes count in: nil without one, or
// while c is not registered (being loaded, or deleted). Caller holds one
// of c's shard locks: the count stops with all of them held (uncount),
// and starts before anyone else can take one (count).
func (c *Cache) inBudget() *budget {
	if c.counted.Load() {
		return c.budget
	}
	return nil
}

// count adds c's bytes to its budget, before c is published (Store's
// registerLocked): nobody else accounts on it yet (a compaction its load
// started only reads its entries), so no lock is needed.
func (c *Cache) count() {
	if c.budget != nil {
		c.budget.used.Add(c.bytes.Load())
		c.counted.Store(true)
	}
}

// uncount takes c's bytes back from its budget (Cache.closeWrites) with
// every shard's write lock held, so that no reservation or removal is
// accounted halfway across the change, and the writes in progress finish
// first (a barrier).
func (c *Cache) uncount() {
	c.lockAll()
	if c.counted.Load() {
		c.budget.used.Add(-c.bytes.Load())
		c.counted.Store(false)
	}
	c.unlockAll()
}

// account adds n to the cache's byte counter and to its Store's budget.
// Caller holds one of c's shard locks.
func (c *Cache) account(n int64) {
	c.bytes.Add(n)
	if b := c.inBudget(); b != nil {
		b.used.Add(n)
	}
}

// tryReserve adds n (negative for a write that shrinks an entry) to the
// byte counters if the results stay within the cache's MaxBytes and the
// Store's MaxTotalBytes, and says which bound refused it otherwise. The
// compare-and-swaps never let a counter exceed its bound. Caller holds
// one of c's shard locks.
func (c *Cache) tryReserve(n int64) room {
	if n == 0 {
		return roomOK
	}
	if n < 0 {
		c.account(n)
		return roomOK
	}
	if limit := c.maxBytes.Load(); limit > 0 {
		for {
			cur := c.bytes.Load()
			if cur+n > limit {
				return roomCache
			}
			if c.bytes.CompareAndSwap(cur, cur+n) {
				break
			}
		}
	} else {
		c.bytes.Add(n)
	}
	if b := c.inBudget(); b != nil && !b.reserve(n) {
		c.bytes.Add(-n)
		return roomStore
	}
	return roomOK
}

// tooLarge returns a *TooLargeError if an entry of size bytes can never
// fit in the cache's MaxBytes or in the Store's MaxTotalBytes.
func (c *Cache) tooLarge(size int64) error {
	if limit := c.maxBytes.Load(); limit > 0 && size > limit {
		return &TooLargeError{Size: size, MaxBytes: limit}
	}
	if c.budget != nil && size > c.budget.limit {
		return &TooLargeError{Size: size, MaxBytes: c.budget.limit}
	}
	return nil
}

// makeRoom evicts one entry other than key's for a write that r refused.
// For the cache's own capacity it evicts from the cache, failing with its
// log's error if it cannot log the eviction (ErrDeleted if that is
// because the cache was deleted meanwhile, its log closed: the caller may
// retry on its successor); if the cache has no entry to evict, the bytes
// are reservations of writes in progress on its other shards, and it
// waits for those writes (see waitWrites). For the Store's budget see
// budget.evictFor.
func (c *Cache) makeRoom(r room, key string) error {
	if r == roomStore {
		return c.budget.evictFor(c, key)
	}
	found, err := c.evictOne(spareKey(key))
	switch {
	case err != nil && c.deleted.Load():
		return ErrDeleted
	case err == nil && !found:
		if b := c.budget; b != nil && b.waitHook != nil {
			b.waitHook()
		}
		c.waitWrites()
	}
	return err
}

// waitWrites waits for the writes in progress on c when it is called:
// it takes each shard's write lock in turn (an empty critical section,
// a barrier, as closeWrites). A write reserves its bytes and stores its
// entry (or gives the bytes back) under its shard's lock, so once the
// barrier has passed, every reservation that was in progress is an
// entry that can be evicted, or bytes given back. The caller holds no
// shard lock.
func (c *Cache) waitWrites() {
	for i := range c.shards {
		c.shards[i].mu.Lock()
		c.shards[i].mu.Unlock() // an empty critical section: a barrier
	}
}

// victim reports whether eviction for the budget should take from x: it
// is registered (its bytes count in the budget) and holds some, and, if
// durable, its log did not refuse its last write (durable.failing):
// such a cache is tried only when no other cache can give room, so that
// a full disk does not cost every write a failing log write.
func victim(x *Cache) bool {
	return x.counted.Load() && x.bytes.Load() > 0 && (x.dur == nil || !x.dur.failing.Load())
}

// evictFor evicts one entry for a write of key to c that the budget
// refused: from the largest of the Store's caches (of a few sampled at
// random when it has many; c among them), so that the caches holding
// most of the memory give it back first, as Redis's allkeys-lru samples
// the whole keyspace. If that cache has no entry to give (c holding only
// key's) or cannot give one (a durable cache whose log refuses the
// eviction record), every other cache with bytes is tried in turn, c
// included: another cache's full disk does not fail c's write while
// room can be made elsewhere. A durable cache whose log refused its last
// write is tried last, only when no other cache had an entry to give.
// If none had an entry, the bytes are reservations of writes in progress
// (the budget holds only registered caches' bytes), and it waits for
// those writes (see waitWrites) before the caller tries again; if
// entries remain that none could evict, the write fails with a
// *BudgetFullError.
func (b *budget) evictFor(c *Cache, key string) error {
	var cause error
	evicted := func(x *Cache) bool {
		var skip spare // another cache's entries are all fair game, "" included
		if x == c {
			skip = spareKey(key)
		}
		found, err := x.evictOne(skip)
		if err != nil && !x.deleted.Load() { // a deleted cache's bytes are out of the budget
			cause = err
		}
		return found
	}
	list := *b.list.Load()
	first := b.largest(c, list)
	if first != nil && evicted(first) {
		return nil
	}
	// The slow path: each cache is tried at most once.
	tried := []*Cache{first}
	try := func(x *Cache) bool {
		if slices.Contains(tried, x) {
			return false
		}
		tried = append(tried, x)
		return evicted(x)
	}
	for _, x := range list {
		if victim(x) && try(x) {
			return nil
		}
	}
	// Last, the durable caches whose logs refused: a log that works
	// again clears the mark with this eviction's record.
	for _, x := range list {
		if x.counted.Load() && x.bytes.Load() > 0 && try(x) {
			return nil
		}
	}
	if cause != nil {
		return &BudgetFullError{Scope: c.scope, Key: key, Limit: b.limit, Cause: cause}
	}
	if b.waitHook != nil {
		b.waitHook()
	}
	for _, x := range list {
		if x.bytes.Load() > 0 {
			x.waitWrites()
		}
	}
	return nil
}

// largest returns the cache holding the most bytes among c and the
// Store's caches (list): all of them when there are at most
// budgetSamples, else budgetSamples picked at random; only caches that
// are victims, nil if none is.
func (b *budget) largest(c *Cache, list []*Cache) *Cache {
	var best *Cache
	consider := func(x *Cache) {
		if victim(x) && (best == nil || x.bytes.Load() > best.bytes.Load()) {
			best = x
		}
	}
	consider(c)
	if len(list) <= budgetSamples {
		for _, x := range list {
			consider(x)
		}
		return best
	}
	for range budgetSamples {
		consider(list[rand.IntN(len(list))])
	}
	return best
}
