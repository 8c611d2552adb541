package cache

import (
	"strconv"
	"time"
)

// Incr adds delta (negative to decrement) to the integer stored under key
// and returns the new value and the version of the write that stored it:
// Redis's INCRBY. The value is kept as its ASCII decimal text, as Redis
// keeps it, so Get reads "42" and a Put of "10" can be incremented. A
// missing or expired key counts as 0.
//
// The read, the addition and the write happen under the key's shard's
// write lock, so concurrent increments never lose one. An increment is a
// write like Put: it takes a version (delta 0 too), counts in Stats.Puts,
// reserves its bytes and evicts to make room under MaxBytes, and a durable
// cache logs it as the put of the new value before it takes effect.
//
// ttl is the time to live of a key the increment creates, with
// PutOptions.TTL's meaning (nil never expires; ≤ 0 expires at once: the
// value is returned, nothing is kept); an existing key keeps its expiry,
// as with Redis's INCR.
//
// It fails with a *NotIntegerError (ErrNotInteger) if the stored value is
// not the canonical decimal text of an int64, an *OverflowError
// (ErrOverflow) if the result would not fit in one, a *TooLargeError if
// the entry cannot fit in MaxBytes, a *StorageError if a durable cache's
// log refuses the record, and ErrDeleted if the cache was deleted. A
// failed increment leaves the entry as it was.
func (c *Cache) Incr(key string, delta int64, ttl *time.Duration) (value int64, version uint64, err error) {
	if c.deleted.Load() {
		return 0, 0, ErrDeleted
	}
	s := c.shardFor(key)
	for {
		var (
			end  uint64
			full room
		)
		value, version, end, full, err = c.incr(s, key, delta, ttl)
		if full == roomOK {
			if end != 0 && err == nil {
				err = c.durableWait("incr", key, end)
			}
			if err != nil {
				return 0, 0, err
			}
			return value, version, nil
		}
		// Out of room: evict one entry (never key itself) and try again,
		// reading the value again: it may have changed meanwhile.
		if err := c.makeRoom(full, key); err != nil {
			return 0, 0, err
		}
	}
}

// incr is one attempt of Incr under the shard's write lock, as write is
// of Put: full says which bound refused the new entry, with nothing
// changed but an expired entry removed.
func (c *Cache) incr(s *shard, key string, delta int64, ttl *time.Duration) (value int64, ver, end uint64, full room, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.deleted.Load() {
		return 0, 0, 0, roomOK, ErrDeleted
	}
	i, exists, now, haveNow := c.lookupLive(s, key)
	var cur int64
	if exists {
		var ok bool
		if cur, ok = parseInteger(s.slots[i].value); !ok {
			return 0, 0, 0, roomOK, &NotIntegerError{Key: key}
		}
	}
	value, ok := addInt64(cur, delta)
	if !ok {
		return 0, 0, 0, roomOK, &OverflowError{Key: key, Value: cur, Delta: delta}
	}

	// A key created with a TTL ≤ 0 expires at once, as such a put: no
	// entry, no reservation.
	immediate := !exists && ttl != nil && *ttl <= 0
	var (
		stored    []byte
		size, old int64
	)
	if !immediate {
		stored = strconv.AppendInt(make([]byte, 0, 20), value, 10)
		size = entrySize(key, len(stored))
		if err := c.tooLarge(size); err != nil {
			return 0, 0, 0, roomOK, err
		}
		if exists {
			old = s.slots[i].size()
		}
		if full = c.tryReserve(size - old); full != roomOK {
			return 0, 0, 0, full, nil
		}
	}

	expires := int64(never)
	switch {
	case exists:
		expires = s.slots[i].expires
	case ttl != nil && !immediate:
		if !haveNow {
			now = c.now()
		}
		expires = deadline(now, *ttl)
	}
	ver = c.version.Add(1)
	if c.dur != nil {
		if end, err = c.logWrite(s, "incr", key, stored, ver, expires, immediate); err != nil {
			if !immediate {
				c.account(old - size)
			}
			return 0, 0, 0, roomOK, err
		}
	}
	s.puts.Add(1)
	switch {
	case immediate:
		s.expirations.Add(1)
	case exists:
		sl := &s.slots[i]
		sl.value, sl.version = stored, ver
		sl.access.Store(ver)
	default:
		s.insert(key, stored, expires, ver)
	}
	return value, ver, end, roomOK, nil
}

// parseInteger parses the canonical decimal text of an int64, the form
// strconv.FormatInt writes (and Redis accepts for INCR): an optional '-',
// then "0" or digits without a leading zero; no '+', spaces or "-0".
func parseInteger(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	// 19 digits hold every int64; more cannot, nor overflow the uint64 below.
	if len(d) == 0 || len(d) > 19 || (d[0] == '0' && (len(d) > 1 || neg)) {
		return 0, false
	}
	var n uint64
	for _, ch := range d {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + uint64(ch-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true // -(1<<63) is math.MinInt64
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// addInt64 returns a+b and whether it did not overflow.
func addInt64(a, b int64) (int64, bool) {
	r := a + b
	if (b > 0 && r < a) || (b < 0 && r > a) {
		return 0, false
	}
	return r, true
}
