package cache

import "time"

// Expire makes key expire ttl from now, whatever its expiry was: Redis's
// PEXPIRE. found is false, and nothing is created, for a missing or
// expired key. ttl must be positive: a *TTLError (ErrInvalidTTL)
// refuses anything else, where Redis would delete the key.
//
// version is the entry's version, which Expire leaves as it was: a
// version names a value (what compare-and-set compares and Get returns),
// and a change of expiry does not change the value. A compare-and-set
// put sets its own TTL anyway, so a version bumped by Expire would only
// make such a put fail for nothing (a read-modify-write loop retrying
// because another client extended a session). The entry counts as used
// (eviction's recency), as after a read; Stats.Puts does not count it.
//
// A durable cache logs the new expiry as a put of the entry (same value,
// same version) before it takes effect, so a restart loads it; it then
// fails with a *StorageError if the log refuses the record, the entry as
// it was. ErrDeleted if the cache was deleted.
func (c *Cache) Expire(key string, ttl time.Duration) (version uint64, found bool, err error) {
	if ttl <= 0 {
		return 0, false, &TTLError{Key: key, TTL: ttl}
	}
	return c.setExpiry(key, &ttl)
}

// Persist removes key's expiry, so it never expires: Redis's PERSIST.
// found is false for a missing or expired key; a key without an expiry is
// found and left as it is (nothing logged). Otherwise as Expire.
func (c *Cache) Persist(key string) (version uint64, found bool, err error) {
	return c.setExpiry(key, nil)
}

// setExpiry is Expire (ttl > 0) and Persist (ttl nil).
func (c *Cache) setExpiry(key string, ttl *time.Duration) (version uint64, found bool, err error) {
	if c.deleted.Load() {
		return 0, false, ErrDeleted
	}
	s := c.shardFor(key)
	version, found, end, err := c.setExpiryLocked(s, key, ttl)
	if end != 0 && err == nil {
		err = c.durableWait("expire", key, end)
	}
	if err != nil {
		return 0, false, err
	}
	return version, found, nil
}

// setExpiryLocked is setExpiry under the shard's write lock; end is the
// offset after a durable cache's record (0: none written).
func (c *Cache) setExpiryLocked(s *shard, key string, ttl *time.Duration) (version uint64, found bool, end uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.deleted.Load() {
		return 0, false, 0, ErrDeleted
	}
	i, exists, now, haveNow := c.lookupLive(s, key)
	if !exists {
		return 0, false, 0, nil
	}
	sl := &s.slots[i]
	expires := int64(never)
	if ttl != nil {
		if !haveNow {
			now = c.now()
		}
		expires = deadline(now, *ttl)
	}
	if expires == sl.expires { // Persist of a key without expiry
		return sl.version, true, 0, nil
	}
	if c.dur != nil {
		if end, err = c.logWrite(s, "expire", key, sl.value, sl.version, expires, false); err != nil {
			return 0, false, 0, err
		}
	}
	sl.expires = expires
	if t := c.version.Load(); sl.access.Load() < t {
		sl.access.Store(t)
	}
	return sl.version, true, end, nil
}
