package server

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/wire"
)

// maxTTL clamps cache TTLs so ttl_ms * 1ms cannot overflow a Duration.
const maxTTL = 100 * 365 * 24 * time.Hour

func ttlFromMs(ms *uint64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := maxTTL
	if *ms < uint64(maxTTL/time.Millisecond) {
		d = time.Duration(*ms) * time.Millisecond
	}
	return &d
}

// CacheResource is the RBAC resource name of a cache.
func CacheResource(tenant, ns, name string) string { return auth.CacheResource(tenant, ns, name) }

func (ctl *control) ext() bool { return ctl.peer&wire.CapCacheExt != 0 }

// cacheScope authorizes and resolves a cache. done is true when the reply
// (an error) has been handled and err says what the stream does next.
func (ctl *control) cacheScope(tenant, ns, name, action string, reqID *uint64) (*cache.Cache, bool, error) {
	if ctl.otherTenant(tenant) {
		return nil, true, ctl.fail("tenant mismatch")
	}
	if !ctl.authorize(action, CacheResource(tenant, ns, name)) {
		if reqID == nil {
			return nil, true, ctl.fail("forbidden")
		}
		return nil, true, ctl.reply(&wire.ErrorMessage{Message: "forbidden"})
	}
	c, err := ctl.c.s.cacheFor(tenant, ns, name)
	if err != nil {
		if reqID == nil {
			return nil, true, ctl.fail(err.Error())
		}
		return nil, true, ctl.reply(&wire.ErrorMessage{Message: err.Error()})
	}
	return c, false, nil
}

// cacheFor looks a cache up, creating it when caches are auto-created.
func (s *Server) cacheFor(tenant, ns, name string) (*cache.Cache, error) {
	if s.opts.Caches == nil {
		return nil, &cache.NotFoundError{Scope: cache.Scope{Tenant: tenant, Namespace: ns, Cache: name}}
	}
	scope := cache.Scope{Tenant: tenant, Namespace: ns, Cache: name}
	c, err := s.opts.Caches.Get(scope)
	if errors.Is(err, cache.ErrNotFound) && s.opts.AutoCreateCaches {
		// The naming rules of streams and of control-plane caches. A '/'
		// would blur RBAC resources: cache:t/ns/a/b names both namespace
		// "ns/a" cache "b" and namespace "ns" cache "a/b", so a token
		// allowed cache:t/ns/* could create caches in namespaces of its
		// own invention.
		for _, n := range [...]struct{ kind, name string }{{"namespace", ns}, {"cache", name}} {
			if err := broker.ValidateName(n.kind, n.name); err != nil {
				return nil, err
			}
		}
		if limit := cmp.Or(s.opts.MaxAutoCreatedCaches, DefaultMaxAutoCreatedCaches); limit > 0 && s.opts.Caches.Len() >= limit {
			if n := s.stats.CacheAutoCreateRefused.Add(1); s.cacheRefusalLogs.Allow() {
				s.opts.Logger.Warn("cache not auto-created: too many caches", "cache", scope.String(), "limit", limit, "refused_total", n)
			}
			return nil, fmt.Errorf("%w (%d; --auto-create-max-caches): %s", ErrTooManyCaches, limit, scope)
		}
		return s.opts.Caches.Create(scope, s.opts.DefaultCacheConfig)
	}
	return c, err
}

// DefaultMaxAutoCreatedCaches is Options.MaxAutoCreatedCaches's default.
const DefaultMaxAutoCreatedCaches = 10000

// ErrTooManyCaches refuses to auto-create a cache beyond
// Options.MaxAutoCreatedCaches.
var ErrTooManyCaches = errors.New("too many caches to auto-create another")

// oneShot finishes a request that carried no request_id: the reference
// replies and then closes the stream.
func (ctl *control) oneShot(reqID *uint64, m wire.Message) error {
	if err := ctl.reply(m); err != nil {
		return err
	}
	if reqID == nil {
		return errClose
	}
	return nil
}

// cachePut serves cache_put, and a binary put (bin, always with a request
// id) whose success is answered with a binary ok instead of cache_ok.
func (ctl *control) cachePut(m *wire.CachePut, bin bool) error {
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheWrite, m.RequestID)
	if done {
		return err
	}
	if err := ctl.checkCacheStorage(c, "put", m.Key); err != nil {
		return ctl.cacheFailure(m.RequestID, err)
	}
	opt := cache.PutOptions{TTL: ttlFromMs(m.TTLMs), IfAbsent: m.IfAbsent, IfVersion: m.IfVersion}
	var version uint64
	if done, err = ctl.writeCache(c, m.TenantID, m.Namespace, m.Cache, m.RequestID, func(c *cache.Cache) (err error) {
		version, err = c.Put(m.Key, m.Value, opt)
		return err
	}); done {
		return err
	}
	if err != nil {
		return ctl.cacheFailure(m.RequestID, err)
	}
	if bin {
		ctl.out = wire.AppendCacheBinOKFrame(ctl.out, *m.RequestID, version)
		return nil
	}
	if m.RequestID == nil {
		return ctl.oneShot(nil, &wire.OK{})
	}
	ok := &wire.CacheOK{RequestID: *m.RequestID}
	if ctl.ext() {
		ok.Version = &version
	}
	return ctl.reply(ok)
}

// writeCache runs write on c, the cache a write request resolved. If c
// was deleted after it was resolved (a capacity change deletes it and
// creates it again), it resolves the scope again, as for a request
// arriving now, and runs write on the cache that holds the name (up to 3
// times), or fails as any request on a missing scope does: done and err
// are then cacheScope's. Otherwise err is write's.
func (ctl *control) writeCache(c *cache.Cache, tenant, ns, name string, reqID *uint64, write func(*cache.Cache) error) (done bool, err error) {
	err = write(c)
	for retries := 0; errors.Is(err, cache.ErrDeleted) && retries < 3; retries++ {
		if c, done, err = ctl.cacheScope(tenant, ns, name, ActionCacheWrite, reqID); done {
			return true, err
		}
		err = write(c)
	}
	return false, err
}

// checkCacheStorage refuses a put (or an increment, op "incr", or a
// change of expiry, op "expire") to a durable cache while the broker's
// free disk space is below its floor (broker.Broker.CheckStorage), as the
// cache refuses one its log cannot write: "storage write failed, cache
// put not stored: …", code storage, the entry as it was. Deletes are not
// checked: they free space, as Redis takes DEL past maxmemory.
func (ctl *control) checkCacheStorage(c *cache.Cache, op, key string) error {
	if !c.Durable() {
		return nil
	}
	if err := ctl.c.s.opts.Broker.CheckStorage(); err != nil {
		return &cache.StorageError{Scope: c.Scope(), Op: op, Key: key, Err: err}
	}
	return nil
}

// cacheFailure answers an engine error: cache_error for clients that speak
// the extension (or sent a conditional put), a plain error otherwise.
func (ctl *control) cacheFailure(reqID *uint64, err error) error {
	code := "invalid"
	var cur *uint64
	var ce *cache.ConditionError
	switch {
	case errors.As(err, &ce):
		code = "condition_failed"
		v := ce.Current
		cur = &v
	case errors.Is(err, cache.ErrTooLarge):
		code = "too_large"
	case errors.Is(err, cache.ErrStorage):
		code = wire.CacheCodeStorage
	case errors.Is(err, cache.ErrNotInteger):
		code = wire.CacheCodeNotInteger
	case errors.Is(err, cache.ErrOverflow):
		code = wire.CacheCodeOverflow
	}
	if reqID == nil {
		return ctl.fail(err.Error())
	}
	if ctl.ext() || code == "condition_failed" {
		return ctl.reply(&wire.CacheError{RequestID: *reqID, Code: code, Message: err.Error(), Version: cur})
	}
	return ctl.reply(&wire.ErrorMessage{Message: err.Error()})
}

// cacheGet serves cache_get, and a binary get (bin, always with a request
// id) answered with a binary value or miss instead of cache_value.
func (ctl *control) cacheGet(m *wire.CacheGet, bin bool) error {
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheRead, m.RequestID)
	if done {
		return err
	}
	if err := ctl.reserveReply(); err != nil { // the reply may be far larger than the request
		return err
	}
	it, found := c.GetWithMeta(m.Key)
	if bin {
		if found {
			ctl.out = wire.AppendCacheBinValueFrame(ctl.out, *m.RequestID, it.Version, it.Value)
		} else {
			ctl.out = wire.AppendCacheBinMissFrame(ctl.out, *m.RequestID)
		}
		return nil
	}
	reply := &wire.CacheValue{TenantID: m.TenantID, Namespace: m.Namespace, Cache: m.Cache, Key: m.Key, RequestID: m.RequestID}
	if found {
		reply.Value = it.Value
		if reply.Value == nil {
			reply.Value = []byte{}
		}
		if ctl.ext() {
			reply.Version = &it.Version
		}
	}
	if err := ctl.cacheReply(m.RequestID, reply); err != nil {
		return err
	}
	if m.RequestID == nil {
		return errClose // the reference's one-shot request
	}
	return nil
}

// replyTooLargeError refuses a request whose JSON reply would exceed the
// frame limit: a value stored from a binary put (or a JSON put near the
// limit) grows by a third in base64, and an mget adds up many values.
type replyTooLargeError struct {
	Size, Limit int
}

func (e *replyTooLargeError) Error() string {
	return fmt.Sprintf("cache reply too large: %d bytes exceeds the frame limit %d", e.Size, e.Limit)
}

// Unwrap returns cache.ErrTooLarge, so the reply's code is too_large.
func (e *replyTooLargeError) Unwrap() error { return cache.ErrTooLarge }

// cacheReply queues m, the reply to a cache request, unless its frame
// would exceed the frame limit, which no peer accepts (the client would
// have to drop the stream and every request in flight on it): the request
// then fails with a *replyTooLargeError.
func (ctl *control) cacheReply(reqID *uint64, m wire.Message) error {
	at := len(ctl.out)
	if err := ctl.reply(m); err != nil {
		return err
	}
	limit := cmp.Or(ctl.c.s.opts.MaxFrameBytes, wire.DefaultMaxFrameBytes)
	if n := len(ctl.out) - at - wire.HeaderSize; n > limit {
		ctl.out = ctl.out[:at]
		return ctl.cacheFailure(reqID, &replyTooLargeError{Size: n, Limit: limit})
	}
	return nil
}

// The extension requests below are only understood on streams that
// negotiated CapCacheExt; elsewhere they are unknown messages, as for the
// reference broker, and reset the stream.
func errNotNegotiated(t wire.MsgType) error {
	return &wire.DecodeError{What: "json message", Err: wire.ErrInvalidJSON, Detail: string(t) + " without its extension capability"}
}

func (ctl *control) cacheDelete(m *wire.CacheDelete) error {
	if !ctl.ext() {
		return errNotNegotiated(m.Type())
	}
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheWrite, &m.RequestID)
	if done {
		return err
	}
	// A durable cache's delete fails (the entry stays) when its log cannot
	// store the record: "storage write failed, …", as a put's. On a cache
	// deleted since it was resolved it goes to the one that holds the name
	// now, as a put does.
	var deleted bool
	done, err = ctl.writeCache(c, m.TenantID, m.Namespace, m.Cache, &m.RequestID, func(c *cache.Cache) (err error) {
		deleted, err = c.Remove(m.Key)
		return err
	})
	if done {
		return err
	}
	if err != nil {
		return ctl.cacheFailure(&m.RequestID, err)
	}
	return ctl.reply(&wire.CacheDeleted{RequestID: m.RequestID, Deleted: deleted})
}

func (ctl *control) cacheTTL(m *wire.CacheTTL) error {
	if !ctl.ext() {
		return errNotNegotiated(m.Type())
	}
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheRead, &m.RequestID)
	if done {
		return err
	}
	rem, hasExpiry, ok := c.TTL(m.Key)
	reply := &wire.CacheTTLValue{RequestID: m.RequestID, Found: ok}
	if ok && hasExpiry {
		// Rounded up: a live entry never reads as ttl_ms 0, which as a
		// put's ttl_ms means "expired at once".
		rem = max(rem, 0)
		ms := uint64(rem / time.Millisecond)
		if rem%time.Millisecond != 0 {
			ms++
		}
		reply.TTLMs = &ms
	}
	return ctl.reply(reply)
}

// maxMGetKeys bounds one cache_mget.
const maxMGetKeys = 10_000

func (ctl *control) cacheMGet(m *wire.CacheMGet) error {
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
	if len(m.Keys) > maxMGetKeys {
		return ctl.reply(&wire.CacheError{RequestID: m.RequestID, Code: "invalid", Message: "too many keys in cache_mget (max 10000)"})
	}
	items := c.MultiGet(m.Keys)
	values := make([][]byte, len(items))
	for i, it := range items {
		if it.OK {
			values[i] = it.Value
			if values[i] == nil {
				values[i] = []byte{}
			}
		}
	}
	reply := &wire.CacheValues{RequestID: m.RequestID, Values: values}
	// Keys may repeat, so a request of a few kilobytes can name one large
	// value thousands of times: size the reply before building it, and
	// refuse one over the limit without allocating it.
	limit := cmp.Or(ctl.c.s.opts.MaxFrameBytes, wire.DefaultMaxFrameBytes)
	if n := cacheValuesSize(reply); n > limit {
		return ctl.cacheFailure(&m.RequestID, &replyTooLargeError{Size: n, Limit: limit})
	}
	return ctl.cacheReply(&m.RequestID, reply)
}

// cacheValuesSize is the payload size of m's JSON frame: the frame of its
// request id with no values, plus each value in base64 between quotes (or
// null) and the commas between them.
func cacheValuesSize(m *wire.CacheValues) int {
	empty, _ := wire.AppendMessageFrame(nil, &wire.CacheValues{RequestID: m.RequestID, Values: [][]byte{}})
	n := len(empty) - wire.HeaderSize + max(len(m.Values)-1, 0)
	for _, v := range m.Values {
		if v == nil {
			n += len("null")
		} else {
			n += 2 + base64.StdEncoding.EncodedLen(len(v))
		}
	}
	return n
}

// cacheIncr serves cache_incr: an atomic increment (cache.Cache.Incr),
// authorized and checked as a put is (cache write permission, the disk's
// free-space floor for a durable cache).
func (ctl *control) cacheIncr(m *wire.CacheIncr) error {
	if !ctl.ext() {
		return errNotNegotiated(m.Type())
	}
	c, done, err := ctl.cacheScope(m.TenantID, m.Namespace, m.Cache, ActionCacheWrite, &m.RequestID)
	if done {
		return err
	}
	if err := ctl.checkCacheStorage(c, "incr", m.Key); err != nil {
		return ctl.cacheFailure(&m.RequestID, err)
	}
	delta := int64(1)
	if m.Delta != nil {
		delta = *m.Delta
	}
	ttl := ttlFromMs(m.TTLMs)
	var value int64
	var version uint64
	if done, err = ctl.writeCache(c, m.TenantID, m.Namespace, m.Cache, &m.RequestID, func(c *cache.Cache) (err error) {
		value, version, err = c.Incr(m.Key, delta, ttl)
		return err
	}); done {
		return err
	}
	if err != nil {
		return ctl.cacheFailure(&m.RequestID, err)
	}
	return ctl.reply(&wire.CacheIncrValue{RequestID: m.RequestID, Value: value, Version: version})
}
