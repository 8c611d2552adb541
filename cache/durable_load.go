package cache

import (
	"fmt"
)

// CorruptLogError is a durable cache's log holding a record that is not a
// cache record (the log itself checksums every record, so this is a log of
// something else, or of a newer format).
type CorruptLogError struct {
	Dir    string
	Offset uint64
	Reason string
}

func (e *CorruptLogError) Error() string {
	return fmt.Sprintf("cache log %s: record %d: %s", e.Dir, e.Offset, e.Reason)
}

// replay applies the records of c's log to c, which nobody else sees yet,
// in log order: the last record of a key decides its state (a put sets it,
// a delete removes it, a put whose expiry has passed by the wall clock
// removes it). It returns the highest version the log holds. It stops
// with ErrClosed, between two reads of the log, once stop reports true
// (its Store is closing).
func (c *Cache) replay(stop func() bool) (uint64, error) {
	d := c.dur
	now := c.now()
	var maxVer uint64
	from, end := d.log.Oldest(), d.log.Next()
	for from < end {
		if stop() {
			return 0, ErrClosed
		}
		recs, err := d.log.Read(from, 0, 0)
		if err != nil {
			return 0, fmt.Errorf("cache log %s: read at offset %d: %w", d.log.Dir(), from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			lr, err := decodeRecord(r.Payload)
			if err != nil {
				return 0, &CorruptLogError{Dir: d.log.Dir(), Offset: r.Offset, Reason: err.Error()}
			}
			maxVer = max(maxVer, lr.version)
			switch lr.kind {
			case recDel:
				c.loadRemove(string(lr.key))
			case recPut:
				exp := c.fromExpiresMs(lr.expiresMs)
				if exp <= now {
					c.loadRemove(string(lr.key))
					continue
				}
				c.loadSet(string(lr.key), lr.value, exp, lr.version)
			}
		}
		from = recs[len(recs)-1].Offset + 1
	}
	return maxVer, nil
}

// loadSet stores a copy of value under key during replay.
func (c *Cache) loadSet(key string, value []byte, expires int64, version uint64) {
	stored := make([]byte, len(value))
	copy(stored, value)
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	size := entrySize(key, len(value))
	if i, ok := s.index[key]; ok {
		sl := &s.slots[i]
		c.account(size - sl.size())
		sl.value, sl.expires, sl.version = stored, expires, version
		sl.access.Store(version)
		return
	}
	s.insert(key, stored, expires, version)
	c.account(size)
}

// loadRemove removes key during replay.
func (c *Cache) loadRemove(key string) {
	s := c.shardFor(key)
	s.mu.Lock()
	if i, ok := s.index[key]; ok {
		c.account(-s.remove(i))
	}
	s.mu.Unlock()
}
