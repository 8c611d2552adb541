package server

import (
	"cmp"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/wire"
)

// cacheExpire serves cache_expire: a change of an existing key's expiry
// (cache.Cache.Expire for ttl_ms > 0, Persist for 0), authorized and
// checked as a put is (cache write permission, the disk's free-space
// floor for a durable cache). A negative ttl_ms is refused with code
// invalid: Redis's EXPIRE would delete the key.
func (ctl *control) cacheExpire(m *wire.CacheExpire) error {
	if !ctl.ext() {
		return errNotNegotiated(m.Type())
	}
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheWrite, &m.RequestID)
	if done {
		return err
	}
	if m.TTLMs < 0 {
		ms := max(m.TTLMs, -int64(maxTTL/time.Millisecond)) // as a Duration without overflow
		return ctl.cacheFailure(&m.RequestID, &cache.TTLError{Key: m.Key, TTL: time.Duration(ms) * time.Millisecond})
	}
	if err := ctl.checkCacheStorage(c, "expire", m.Key); err != nil {
		return ctl.cacheFailure(&m.RequestID, err)
	}
	var ttl *time.Duration // nil: persist
	if m.TTLMs > 0 {
		ttl = ttlFromMs(wire.U64(uint64(m.TTLMs)))
	}
	reply := &wire.CacheExpireResult{RequestID: m.RequestID}
	if done, err = ctl.writeCache(c, m.TenantID, m.Namespace, m.Cache, &m.RequestID, func(c *cache.Cache) (err error) {
		if ttl == nil {
			reply.Version, reply.Found, err = c.Persist(m.Key)
		} else {
			reply.Version, reply.Found, err = c.Expire(m.Key, *ttl)
		}
		return err
	}); done {
		return err
	}
	if err != nil {
		return ctl.cacheFailure(&m.RequestID, err)
	}
	return ctl.reply(reply)
}

// cacheScan serves cache_scan: a page of the cache's keys
// (cache.Cache.Scan), authorized as a get is (cache read permission). The
// page holds at most limit keys (default wire.DefaultScanLimit, capped at
// wire.MaxScanLimit) and stops early to keep its frame within the frame
// limit.
func (ctl *control) cacheScan(m *wire.CacheScan) error {
	if !ctl.ext() {
		return errNotNegotiated(m.Type())
	}
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheRead, &m.RequestID)
	if done {
		return err
	}
	if err := ctl.reserveReply(); err != nil { // the reply may be far larger than the request
		return err
	}
	limit := uint64(wire.DefaultScanLimit)
	if m.Limit != nil {
		limit = min(*m.Limit, wire.MaxScanLimit)
	}
	if limit == 0 {
		return ctl.reply(&wire.CacheError{RequestID: m.RequestID, Code: "invalid", Message: "cache_scan limit must be at least 1"})
	}
	reply := &wire.CacheScanPage{RequestID: m.RequestID, Keys: []string{}}
	envelope, err := wire.EncodeMessage(reply)
	if err != nil {
		return err
	}
	page, err := c.Scan(cache.ScanOptions{Prefix: m.Prefix, Cursor: m.Cursor, Limit: int(limit),
		MaxBytes: cmp.Or(ctl.c.s.opts.MaxFrameBytes, wire.DefaultMaxFrameBytes) - len(envelope),
		KeyBytes: func(key string) int { return wire.QuotedLen(key) + 1 }}) // and a comma
	if err != nil {
		return ctl.cacheFailure(&m.RequestID, err)
	}
	if len(page.Keys) > 0 {
		reply.Keys = page.Keys
	}
	reply.Cursor = page.Cursor
	return ctl.cacheReply(&m.RequestID, reply)
}
