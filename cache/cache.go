package cache

import (
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is one scope's key → value engine. It is safe for concurrent use.
// Obtain one from Store.Create or Store.Get.
type Cache struct {
	// Read-only after creation, read by every operation.
	scope   Scope
	cfg     Config
	clock   Clock
	epoch   time.Time // deadlines are nanoseconds since epoch
	seed    maphash.Seed
	mask    uint64
	shards  []shard
	deleted atomic.Bool // set once by Store.Delete
	dur     *durable    // the log of a durable cache; nil in memory
	budget  *budget     // the Store's memory budget; nil when it has none
	// counted: the cache's bytes count in budget (registered, not
	// deleted). Set before the cache is published (count), cleared with
	// every shard's write lock held (uncount); read under one of them
	// (inBudget) or as a hint (victim).
	counted atomic.Bool

	_ [64]byte

	// Written by every Put.
	maxBytes  atomic.Int64  // Config.MaxBytes; Store.Resize changes it
	version   atomic.Uint64 // last version handed out; also the recency clock
	bytes     atomic.Int64  // accounted bytes of the stored entries, changed only under their shard's lock
	evictNext atomic.Uint64 // eviction's rotating shard cursor

	_ [64]byte

	sweepMu    sync.Mutex
	sweepShard int // guarded by sweepMu
}

// Item is an entry as read by GetWithMeta and MultiGet.
type Item struct {
	// Value is the stored value; the caller must not modify it.
	Value []byte
	// Version is the version of the write that stored Value.
	Version uint64
	// ExpiresAt is when the entry expires; zero if it never does.
	ExpiresAt time.Time
	// OK is false for a missing or expired key (MultiGet).
	OK bool
}

// Stats are a cache's counters since creation, and its current size.
type Stats struct {
	Hits            uint64 // Get, GetWithMeta and MultiGet lookups that found a live entry
	Misses          uint64 // those that did not (missing or expired)
	Expirations     uint64 // expired entries removed: lazily, by the sweep, by eviction, and TTL ≤ 0 writes
	Evictions       uint64 // live entries removed to make room under MaxBytes
	Puts            uint64 // successful writes (puts and increments)
	Deletes         uint64 // Delete calls that removed a live entry
	Flushed         uint64 // live entries removed by Flush (the expired ones it drops count as Expirations)
	ConditionFailed uint64 // Puts refused by IfAbsent or IfVersion
	Bytes           int64  // accounted bytes (see EntryOverhead), ≤ MaxBytes when bounded
	Entries         int64  // entries stored, live or expired but not yet removed

	// Of a durable cache only (zero in memory):
	LogBytes       int64  // about the size of its log on disk
	LogWriteErrors uint64 // writes (and compactions) its log refused: the write failed
	Compactions    uint64 // compactions of its log completed
}

// newCache returns a cache whose first version is base+1, in the Store's
// budget b (nil: none), where its bytes count once it is registered.
func newCache(scope Scope, cfg Config, clock Clock, base uint64, b *budget) *Cache {
	c := &Cache{
		scope:  scope,
		cfg:    cfg,
		budget: b,
		clock:  clock,
		epoch:  clock.Now(),
		seed:   maphash.MakeSeed(),
		mask:   uint64(cfg.Shards - 1),
		shards: make([]shard, cfg.Shards),
	}
	c.version.Store(base)
	c.maxBytes.Store(cfg.MaxBytes)
	return c
}

// Scope returns the cache's scope.
func (c *Cache) Scope() Scope { return c.scope }

// Config returns the cache's configuration, defaults applied (MaxBytes as
// Store.Resize last set it).
func (c *Cache) Config() Config {
	cfg := c.cfg
	cfg.MaxBytes = c.maxBytes.Load()
	return cfg
}

// Durable reports whether the cache is backed by a log (Store.CreateDurable).
func (c *Cache) Durable() bool { return c.dur != nil }

func (c *Cache) shardFor(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)&c.mask]
}

// now is the clock reading in nanoseconds since the cache's epoch, below
// never: a clock read over 292 years after the epoch (an injected clock
// stepped forward; Sub saturates there) must not reach the expiry of the
// entries that never expire, or every check "expires <= now" would find
// them expired.
func (c *Cache) now() int64 { return min(int64(c.clock.Now().Sub(c.epoch)), never-1) }

func (c *Cache) expiresAt(expires int64) time.Time {
	if expires == never {
		return time.Time{}
	}
	return c.epoch.Add(time.Duration(expires))
}

// deadline is now+ttl (ttl > 0), saturated below never. now is negative
// when the clock reads before the cache's epoch (a clock stepped back):
// then now+ttl cannot overflow, while never-now would.
func deadline(now int64, ttl time.Duration) int64 {
	if now >= 0 && int64(ttl) >= never-now {
		return never - 1
	}
	return now + int64(ttl)
}

// timeLeft is expires-now (expires > now), saturated at the largest
// Duration: with now negative (a clock stepped back before the epoch) the
// difference can exceed it.
func timeLeft(expires, now int64) time.Duration {
	if now < 0 && expires > never+now {
		return time.Duration(never)
	}
	return time.Duration(expires - now)
}

// view is what a read returns. now is the clock reading the read used, set
// only for an entry with a TTL.
type view struct {
	value   []byte
	version uint64
	expires int64
	now     int64
}

// read looks key up, removing it if it has expired. count says whether the
// lookup counts as a hit or miss.
func (c *Cache) read(key string, count bool) (view, bool) {
	s := c.shardFor(key)
	s.mu.RLock()
	i, ok := s.index[key]
	if !ok {
		s.mu.RUnlock()
		if count {
			s.misses.Add(1)
		}
		return view{}, false
	}
	sl := &s.slots[i]
	var now int64
	if sl.expires != never {
		if now = c.now(); sl.expires <= now {
			s.mu.RUnlock()
			c.expireKey(s, key, now)
			if count {
				s.misses.Add(1)
			}
			return view{}, false
		}
	}
	if t := c.version.Load(); sl.access.Load() < t {
		sl.access.Store(t)
	}
	v := view{sl.value, sl.version, sl.expires, now}
	s.mu.RUnlock()
	if count {
		s.hits.Add(1)
	}
	return v, true
}

// expireKey removes key if it is still expired at now.
func (c *Cache) expireKey(s *shard, key string, now int64) {
	s.mu.Lock()
	if i, ok := s.index[key]; ok && s.slots[i].expires <= now {
		c.account(-s.remove(i))
		s.expirations.Add(1)
	}
	s.mu.Unlock()
}

// Get returns key's value. The slice is the stored value itself: the caller
// must not modify it. It stays valid (and unchanged) after later writes.
func (c *Cache) Get(key string) (value []byte, ok bool) {
	v, ok := c.read(key, true)
	return v.value, ok
}

// GetWithMeta returns key's entry with its version and expiry.
func (c *Cache) GetWithMeta(key string) (Item, bool) {
	v, ok := c.read(key, true)
	if !ok {
		return Item{}, false
	}
	return Item{Value: v.value, Version: v.version, ExpiresAt: c.expiresAt(v.expires), OK: true}, true
}

// MultiGet looks up every key; result i is keys[i]'s entry, OK false if it
// is missing or expired. Each key is looked up on its own: the result is not
// a snapshot across keys.
func (c *Cache) MultiGet(keys []string) []Item {
	out := make([]Item, len(keys))
	for i, k := range keys {
		out[i], _ = c.GetWithMeta(k)
	}
	return out
}

// TTL reports key's remaining time to live: hasExpiry is false if it never
// expires, ok false if it is missing or expired. It does not count as a hit
// or miss.
func (c *Cache) TTL(key string) (remaining time.Duration, hasExpiry bool, ok bool) {
	v, ok := c.read(key, false)
	if !ok || v.expires == never {
		return 0, false, ok
	}
	return timeLeft(v.expires, v.now), true, true
}

// Delete removes key and reports whether a live entry was removed. An
// expired entry is removed too (counted as an expiration) and reports false.
//
// A durable cache's Delete whose log write fails leaves the entry and
// reports false; Remove reports why.
func (c *Cache) Delete(key string) bool {
	ok, _ := c.Remove(key)
	return ok
}

// Remove is Delete, also reporting a durable cache's *StorageError (the
// entry was then left in place), and ErrDeleted if the cache was deleted
// (as Put: the caller may remove the key from the cache that holds the
// name now).
func (c *Cache) Remove(key string) (bool, error) {
	removed, end, err := c.remove(key)
	if end != 0 {
		if err := c.durableWait("delete", key, end); err != nil {
			return false, err
		}
	}
	return removed, err
}

// remove is Remove under the shard's lock; end is the offset after the
// delete record of a durable cache (0: none).
func (c *Cache) remove(key string) (removed bool, end uint64, err error) {
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.deleted.Load() {
		return false, 0, ErrDeleted // not a durable cache's closed log's error
	}
	i, ok := s.index[key]
	if !ok {
		return false, 0, nil
	}
	expired := s.slots[i].expires != never && s.slots[i].expires <= c.now()
	if !expired && c.dur != nil {
		if end, err = c.logDel(s, "delete", key, s.slots[i].version); err != nil {
			return false, 0, err
		}
	}
	c.account(-s.remove(i))
	if expired {
		s.expirations.Add(1)
		return false, 0, nil
	}
	s.deletes.Add(1)
	return true, end, nil
}

// Put writes value under key and returns the write's version. The cache
// stores its own copy of value. It fails with a *TooLargeError if the entry
// can never fit in MaxBytes, a *ConditionError if opt's condition does not
// hold, and ErrDeleted if the cache was deleted. See PutOptions for TTL
// and conditions.
func (c *Cache) Put(key string, value []byte, opt PutOptions) (uint64, error) {
	size := entrySize(key, len(value))
	if err := c.tooLarge(size); err != nil {
		return 0, err
	}
	if c.deleted.Load() {
		return 0, ErrDeleted
	}
	s := c.shardFor(key)
	conditional := opt.IfAbsent || opt.IfVersion != nil
	if conditional {
		if err := c.precheck(s, key, opt); err != nil {
			return 0, err
		}
	}
	// A write that expires at once stores nothing: no copy, no reservation.
	immediate := opt.TTL != nil && *opt.TTL <= 0
	var stored []byte
	if !immediate {
		stored = make([]byte, len(value))
		copy(stored, value)
	}
	for {
		ver, end, full, err := c.write(s, key, stored, size, immediate, conditional, opt)
		if full == roomOK {
			if end != 0 && err == nil {
				err = c.durableWait("put", key, end)
			}
			return ver, err
		}
		// Out of room: evict one entry (never key itself, whose bytes the
		// write reuses) and try again — unless a Resize has lowered the
		// capacity below the entry meanwhile: then no eviction makes room.
		if err := c.tooLarge(size); err != nil {
			return 0, err
		}
		if err := c.makeRoom(full, key); err != nil {
			return 0, err
		}
	}
}

// write is one attempt of Put under the shard's write lock: it removes an
// expired entry under key, checks the condition, reserves the difference
// between the new entry's size and the size of the entry it replaces, and
// stores. full says which bound refused the reservation (MaxBytes or the
// Store's MaxTotalBytes), with nothing changed but an expired entry
// removed; it is roomOK otherwise. A durable cache's write
// appends its record before it changes anything but the reservation, which
// it gives back if the append fails; end is the offset after the record.
func (c *Cache) write(s *shard, key string, stored []byte, size int64, immediate, conditional bool, opt PutOptions) (ver, end uint64, full room, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.deleted.Load() {
		return 0, 0, roomOK, ErrDeleted
	}
	i, exists, now, haveNow := c.lookupLive(s, key)
	if conditional {
		var cur uint64
		if exists {
			cur = s.slots[i].version
		}
		if conditionFails(opt, cur) {
			s.conditionFailed.Add(1)
			return 0, 0, roomOK, &ConditionError{Key: key, Current: cur}
		}
	}
	var old int64
	if !immediate {
		if exists {
			old = s.slots[i].size()
		}
		if full = c.tryReserve(size - old); full != roomOK {
			return 0, 0, full, nil
		}
	}

	expires := int64(never)
	if opt.TTL != nil && !immediate {
		if !haveNow {
			now = c.now()
		}
		expires = deadline(now, *opt.TTL)
	}
	ver = c.version.Add(1)
	if c.dur != nil {
		// An immediate expiry is recorded even for a missing key: its
		// version stays in the log.
		if end, err = c.logWrite(s, "put", key, stored, ver, expires, immediate); err != nil {
			if !immediate {
				c.account(old - size)
			}
			return 0, 0, roomOK, err
		}
	}
	s.puts.Add(1)
	switch {
	case immediate:
		if exists {
			c.account(-s.remove(i))
		}
		s.expirations.Add(1)
	case exists:
		sl := &s.slots[i]
		sl.value, sl.expires, sl.version = stored, expires, ver
		sl.access.Store(ver)
	default:
		s.insert(key, stored, expires, ver)
	}
	return ver, end, roomOK, nil
}

// conditionFails reports whether opt's condition fails on a key at version
// cur (0 if absent). Versions start at 1, so IfVersion 0 holds exactly when
// the key is absent.
func conditionFails(opt PutOptions, cur uint64) bool {
	return (opt.IfAbsent && cur != 0) || (opt.IfVersion != nil && *opt.IfVersion != cur)
}

// precheck evaluates a conditional Put's condition under the shard's read
// lock, so a write bound to fail neither copies, reserves nor evicts. A
// failure here is final (the condition did not hold at that instant); a
// success is checked again under the write lock.
func (c *Cache) precheck(s *shard, key string, opt PutOptions) error {
	var cur uint64
	s.mu.RLock()
	if i, ok := s.index[key]; ok {
		if sl := &s.slots[i]; sl.expires == never || sl.expires > c.now() {
			cur = sl.version
		}
	}
	s.mu.RUnlock()
	if conditionFails(opt, cur) {
		s.conditionFailed.Add(1)
		return &ConditionError{Key: key, Current: cur}
	}
	return nil
}

// sample is an eviction candidate.
type sample struct {
	s       *shard
	i       uint32
	version uint64 // identifies the entry in slot i
	access  uint64
	expired bool
}

// spare names the key an eviction leaves alone: the key a write is
// writing, whose bytes it will reuse. Its zero value spares none (a
// Resize, a load, another cache's eviction for the budget): "" is a key
// like any other, so it cannot stand for "none".
type spare struct {
	key string
	set bool
}

// spareKey spares key.
func spareKey(key string) spare { return spare{key: key, set: true} }

// spares reports whether key is the one to leave alone.
func (sp spare) spares(key string) bool { return sp.set && sp.key == key }

// evictOne removes one entry other than skip's (the key being written) and
// reports whether it found one to remove. It samples EvictionSamples
// entries, each from a random shard under that shard's read lock, and
// removes the least recently used one — or the first expired one — if it
// is still in place. Sampling across shards approximates LRU over the whole
// cache, whatever the shards' sizes. A durable cache logs the eviction
// first; if its log refuses, nothing is evicted and the error returned.
func (c *Cache) evictOne(skip spare) (bool, error) {
	var (
		best    sample
		found   bool
		now     int64
		haveNow bool
	)
	for range c.cfg.EvictionSamples {
		s := &c.shards[rand.Uint64()&c.mask]
		s.mu.RLock()
		i, ok := s.pick()
		if !ok || skip.spares(s.slots[i].key) {
			s.mu.RUnlock()
			continue
		}
		sl := &s.slots[i]
		cand := sample{s: s, i: i, version: sl.version, access: sl.access.Load()}
		if sl.expires != never {
			if !haveNow {
				now, haveNow = c.now(), true
			}
			cand.expired = sl.expires <= now
		}
		s.mu.RUnlock()
		if !found || cand.access < best.access {
			best, found = cand, true
		}
		if cand.expired {
			best = cand
			break
		}
	}
	if !found && !c.anyEntry(skip, &best) {
		return false, nil
	}
	s := best.s
	s.mu.Lock()
	if int(best.i) < len(s.slots) && s.slots[best.i].version == best.version {
		// Expire and Persist keep the version: read the expiry again
		// under the write lock rather than trust the sample's.
		if e := s.slots[best.i].expires; e != never {
			best.expired = e <= c.now()
		} else {
			best.expired = false
		}
		if !best.expired && c.dur != nil {
			// Logged, or the entry would come back after a restart. The
			// put that needs the room waits for its own record, which
			// follows this one.
			if _, err := c.logDel(s, "evict", s.slots[best.i].key, best.version); err != nil {
				s.mu.Unlock()
				return false, err
			}
		}
		c.account(-s.remove(best.i))
		if best.expired {
			s.expirations.Add(1)
		} else {
			s.evictions.Add(1)
		}
	}
	// Else a writer replaced or removed it meanwhile: that was progress too,
	// and the caller tries again.
	s.mu.Unlock()
	return true, nil
}

// anyEntry finds some entry other than skip's when random samples found
// none: a live one of the next shard in rotation that has one.
func (c *Cache) anyEntry(skip spare, out *sample) bool {
	start := c.evictNext.Add(1)
	for j := range uint64(len(c.shards)) {
		s := &c.shards[(start+j)&c.mask]
		s.mu.RLock()
		i, ok := s.pick()
		if ok && skip.spares(s.slots[i].key) {
			i, ok = s.other(i)
		}
		if ok {
			*out = sample{s: s, i: i, version: s.slots[i].version}
		}
		s.mu.RUnlock()
		if ok {
			return true
		}
	}
	return false
}

// Sweep removes expired entries and returns how many it removed. It
// visits at most max slots, continuing round-robin across shards from where
// the previous sweep stopped, and stops early at the end of a pass over the
// cache (the next sweep starts a new pass). The Store's background sweep
// runs the same code; tests call it directly.
func (c *Cache) Sweep(max int) int {
	_, removed, _ := c.sweep(max)
	return removed
}

// sweep reports the slots it visited (a shard with none counting one, so
// that a budget bounds the work however many caches and shards there
// are), the entries it removed and whether it finished a pass.
func (c *Cache) sweep(budget int) (visited, removed int, passDone bool) {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	now := c.now()
	for visited < budget {
		s := &c.shards[c.sweepShard]
		v, r, wrapped := s.sweep(now, budget-visited, c.account)
		visited += max(v, 1)
		removed += r
		if wrapped {
			c.sweepShard = (c.sweepShard + 1) & int(c.mask)
			if c.sweepShard == 0 {
				return visited, removed, true
			}
		}
	}
	return visited, removed, false
}

// closeWrites marks the cache deleted, waits for the writes in progress
// and takes its bytes out of the Store's budget: every write checks the
// mark under its shard's lock, so once each lock has been taken no write
// will store an entry, reserve bytes or take a version. The entries
// dropped later (clear) give nothing back to the budget, which no longer
// counts them: a write to another cache that needs room finds it at once.
func (c *Cache) closeWrites() {
	c.deleted.Store(true)
	c.uncount()
}

// lockAll takes every shard's write lock, in index order (as Flush).
func (c *Cache) lockAll() {
	for i := range c.shards {
		c.shards[i].mu.Lock()
	}
}

// unlockAll releases what lockAll took.
func (c *Cache) unlockAll() {
	for i := range c.shards {
		c.shards[i].mu.Unlock()
	}
}

// clear drops every entry of a deleted cache.
func (c *Cache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.account(-s.reset())
		s.mu.Unlock()
	}
}

// Stats returns the cache's counters. They are read without a common lock,
// so under load they are not a consistent snapshot of one instant.
func (c *Cache) Stats() Stats {
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		st.Expirations += s.expirations.Load()
		st.Evictions += s.evictions.Load()
		st.Puts += s.puts.Load()
		st.Deletes += s.deletes.Load()
		st.Flushed += s.flushed.Load()
		st.ConditionFailed += s.conditionFailed.Load()
		st.Entries += s.entries.Load()
	}
	st.Bytes = c.bytes.Load()
	if d := c.dur; d != nil {
		st.LogBytes = d.baseBytes.Load() + d.appended.Load()
		st.LogWriteErrors = d.writeErrors.Load()
		st.Compactions = d.compactions.Load()
	}
	return st
}

// lookupLive finds key's slot in s (s.mu held for writing), removing an
// expired entry (counted) as if it were not there. now is the clock's
// reading, taken (haveNow) only for an entry with an expiry.
func (c *Cache) lookupLive(s *shard, key string) (i uint32, exists bool, now int64, haveNow bool) {
	i, exists = s.index[key]
	if exists && s.slots[i].expires != never {
		now, haveNow = c.now(), true
		if s.slots[i].expires <= now {
			c.account(-s.remove(i))
			s.expirations.Add(1)
			exists = false
		}
	}
	return i, exists, now, haveNow
}
