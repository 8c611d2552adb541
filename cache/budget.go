package cache

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// budget is a Store's memory budget (StoreOptions.MaxTotalBytes): the
// bytes accounted to all its caches together, in the same units as each
// cache's own MaxBytes. Every cache of the Store adds its entries' bytes
// to used as it adds them to its own counter, so used is the sum of the
// caches' Bytes (transiently more while a deleted cache's entries are
// dropped).
type budget struct {
	limit int64
	used  atomic.Int64
	list  *atomic.Pointer[[]*Cache] // the Store's caches, for eviction
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

// account adds n to the cache's byte counter and to its Store's budget.
func (c *Cache) account(n int64) {
	c.bytes.Add(n)
	if c.budget != nil {
		c.budget.used.Add(n)
	}
}

// tryReserve adds n (negative for a write that shrinks an entry) to the
// byte counters if the results stay within the cache's MaxBytes and the
// Store's MaxTotalBytes, and says which bound refused it otherwise. The
// compare-and-swaps never let a counter exceed its bound.
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
	if c.budget != nil && !c.budget.reserve(n) {
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

// makeRoom evicts one entry other than key's for a write that r refused,
// and yields if there was none to evict (the bytes are those of writes
// in progress). For the cache's own capacity it evicts from the cache,
// failing with its log's error if it cannot log the eviction (ErrDeleted
// if that is because the cache was deleted meanwhile, its log closed:
// the caller may retry on its successor). For the Store's budget see
// budget.evictFor.
func (c *Cache) makeRoom(r room, key string) error {
	if r == roomStore {
		return c.budget.evictFor(c, key)
	}
	found, err := c.evictOne(key)
	switch {
	case err != nil && c.deleted.Load():
		return ErrDeleted
	case err == nil && !found:
		runtime.Gosched()
	}
	return err
}

// evictFor evicts one entry for a write of key to c that the budget
// refused: from the largest of the Store's caches (of a few sampled at
// random when it has many; c among them), so that the caches holding
// most of the memory give it back first, as Redis's allkeys-lru samples
// the whole keyspace. If that cache has no entry to give (c holding only
// key's) or cannot give one (a durable cache whose log refuses the
// eviction record), every other cache with bytes is tried in turn, c
// included: another cache's full disk does not fail c's write while
// room can be made elsewhere. If none had an entry, it yields (the bytes
// are those of writes in progress, or of deleted caches being cleared);
// if entries remain that none could evict, the write fails with a
// *BudgetFullError.
func (b *budget) evictFor(c *Cache, key string) error {
	var cause error
	evicted := func(x *Cache) bool {
		skip := ""
		if x == c {
			skip = key
		}
		found, err := x.evictOne(skip)
		if err != nil && !x.deleted.Load() { // a deleted cache's bytes are going anyway
			cause = err
		}
		return found
	}
	first := b.largest(c)
	if evicted(first) {
		return nil
	}
	for _, x := range *b.list.Load() {
		if x != first && x.bytes.Load() > 0 && evicted(x) {
			return nil
		}
	}
	if cause != nil {
		return &BudgetFullError{Scope: c.scope, Key: key, Limit: b.limit, Cause: cause}
	}
	runtime.Gosched()
	return nil
}

// largest returns the cache holding the most bytes among c and the
// Store's caches: all of them when there are at most budgetSamples, else
// budgetSamples picked at random.
func (b *budget) largest(c *Cache) *Cache {
	best := c
	consider := func(x *Cache) {
		if x.bytes.Load() > best.bytes.Load() {
			best = x
		}
	}
	list := *b.list.Load()
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
