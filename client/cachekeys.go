package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/felixmq/felix/wire"
)

// Expire makes key expire ttl from now (rounded up to whole
// milliseconds), whatever its expiry was: Redis's PEXPIRE. found is false
// for a missing or expired key, which is not created. The entry's value
// and version stay as they were, so a compare-and-set (IfVersion) on a
// version read before still applies.
//
// ttl must be positive: anything else fails without sending (Redis's
// EXPIRE deletes a key given one; use Delete, and Persist to remove an
// expiry). It fails with a *CacheError matching ErrStorage when a durable
// cache cannot log the change (the expiry is then unchanged), and with
// ErrUnsupported, without sending anything, when the broker did not grant
// the cache extension (wire.CapCacheExt).
func (k *Cache) Expire(ctx context.Context, key string, ttl time.Duration) (found bool, err error) {
	if ttl <= 0 {
		return false, fmt.Errorf("%w: key %q: ttl %v", errExpireTTL, key, ttl)
	}
	ms := ttl / time.Millisecond
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return k.setExpiry(ctx, key, int64(ms))
}

var errExpireTTL = errors.New("felix: cache expire: the ttl must be positive (Persist removes an expiry, Delete deletes a key)")

// Persist removes key's expiry, so it never expires: Redis's PERSIST.
// found is false for a missing or expired key; a key without an expiry
// is found too (Redis's PERSIST would answer 0). Errors as Expire's.
func (k *Cache) Persist(ctx context.Context, key string) (found bool, err error) {
	return k.setExpiry(ctx, key, 0)
}

func (k *Cache) setExpiry(ctx context.Context, key string, ttlMs int64) (bool, error) {
	m := &wire.CacheExpire{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Key: key, TTLMs: ttlMs}
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message { m.RequestID = id; return m })
	if err != nil {
		return false, err
	}
	r, ok := reply.(*wire.CacheExpireResult)
	if !ok {
		return false, unexpected(reply, "cache_expire")
	}
	return r.Found, nil
}

// Scan returns a page of the cache's live keys that start with prefix
// and sort after cursor, in byte order, and the cursor of the next page:
// Redis's SCAN with MATCH prefix*. Start with the cursor "" and pass each
// next back until it is "" again: a key live for the whole scan comes
// exactly once; keys written or deleted meanwhile may or may not. limit
// is the most keys a page holds (≤ 0: the broker's default, 100; it caps
// it at 1000); a page may hold fewer, as the broker keeps it within its
// frame limit. The cursor is the page's last key, so a scan can also
// start after any key.
//
// A page costs the broker a pass over the cache's keys: page through a
// large cache with a large limit. It fails with ErrUnsupported, without
// sending anything, when the broker did not grant the cache extension,
// and with an error when the broker's page does not follow the cursor
// (keys out of order, not after the cursor, or without the prefix).
func (k *Cache) Scan(ctx context.Context, prefix, cursor string, limit int) (keys []string, next string, err error) {
	m := &wire.CacheScan{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Prefix: prefix, Cursor: cursor}
	if limit > 0 {
		m.Limit = wire.U64(uint64(limit))
	}
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message { m.RequestID = id; return m })
	if err != nil {
		return nil, "", err
	}
	p, ok := reply.(*wire.CacheScanPage)
	if !ok || (p.Cursor != "" && (len(p.Keys) == 0 || p.Keys[len(p.Keys)-1] != p.Cursor)) || !pageFollows(p.Keys, prefix, cursor) {
		return nil, "", unexpected(reply, "cache_scan")
	}
	return p.Keys, p.Cursor, nil
}

// pageFollows reports whether keys can be a page of the scan of prefix
// after cursor: keys with the prefix, in increasing byte order, after the
// cursor. A page that goes back would make Keys loop forever.
func pageFollows(keys []string, prefix, cursor string) bool {
	prev, first := cursor, cursor == ""
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || (!first && k <= prev) {
			return false
		}
		prev, first = k, false
	}
	return true
}

// Keys iterates over every live key that starts with prefix, in byte
// order, fetching pages of up to 1000 keys with Scan as it goes (the
// guarantees are Scan's). An error ends the iteration, yielded with an
// empty key.
//
//	for key, err := range kv.Keys(ctx, "user:") {
//		if err != nil {
//			return err
//		}
//		fmt.Println(key)
//	}
func (k *Cache) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		cursor := ""
		for {
			keys, next, err := k.Scan(ctx, prefix, cursor, wire.MaxScanLimit)
			if err != nil {
				yield("", err)
				return
			}
			for _, key := range keys {
				if !yield(key, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			cursor = next
		}
	}
}
