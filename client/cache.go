package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// Cache is a handle on one cache (namespace/name) of the client's tenant.
// Requests are spread over the client's cache streams (CacheConns ×
// CacheStreamsPerConn) and pipelined: many may be in flight on one stream.
type Cache struct {
	c         *Client
	namespace string
	name      string
}

// Cache returns a handle on namespace/name. It does no I/O.
func (c *Client) Cache(namespace, name string) *Cache {
	return &Cache{c: c, namespace: namespace, name: name}
}

// CacheItem is a cache entry as read.
type CacheItem struct {
	Value   []byte
	Version uint64 // 0 when the broker does not report versions
	Found   bool
}

// ErrConditionFailed: a conditional Put (IfAbsent, IfVersion) did not apply.
var ErrConditionFailed = errors.New("felix: cache condition failed")

// ErrValueTooLarge: the value cannot be sent (over MaxFrameBytes) or the
// cache refused it (larger than its capacity).
var ErrValueTooLarge = errors.New("felix: cache value too large")

// ErrNotInteger: Incr on a key whose value is not the decimal text of a
// signed 64-bit integer (Redis: "value is not an integer or out of
// range"). The entry is unchanged.
var ErrNotInteger = errors.New("felix: cache value is not an integer")

// ErrOverflow: Incr whose result would not fit in an int64 (Redis:
// "increment or decrement would overflow"). The entry is unchanged.
var ErrOverflow = errors.New("felix: cache increment would overflow")

// CacheError is a cache_error reply. It matches ErrConditionFailed,
// ErrValueTooLarge, ErrStorage (a durable cache's log could not store
// the write; the entry is unchanged), ErrNotInteger or ErrOverflow with
// errors.Is when its code says so.
type CacheError struct {
	Code    string // condition_failed, too_large, storage, not_integer, overflow, invalid
	Message string
	Version uint64 // current version, for condition_failed (0: absent)
}

func (e *CacheError) Error() string { return "felix: cache: " + e.Message }

// Is maps the reply codes onto the sentinel errors.
func (e *CacheError) Is(target error) bool {
	return (target == ErrConditionFailed && e.Code == "condition_failed") ||
		(target == ErrValueTooLarge && e.Code == "too_large") ||
		(target == ErrStorage && e.Code == wire.CacheCodeStorage) ||
		(target == ErrNotInteger && e.Code == wire.CacheCodeNotInteger) ||
		(target == ErrOverflow && e.Code == wire.CacheCodeOverflow)
}

// PutOption modifies a Put.
type PutOption func(*wire.CachePut)

// WithTTL expires the entry after d, rounded up to whole milliseconds (the
// protocol's unit), so a positive d never means "at once"; 0 or less makes
// it expire at once. Without it the entry never expires.
func WithTTL(d time.Duration) PutOption {
	ms := uint64(0)
	if d > 0 {
		ms = uint64(d / time.Millisecond) // rounded up below, without overflowing near MaxInt64
		if d%time.Millisecond != 0 {
			ms++
		}
	}
	return func(m *wire.CachePut) { m.TTLMs = wire.U64(ms) }
}

// IfAbsent stores only if the key has no live entry.
func IfAbsent() PutOption { return func(m *wire.CachePut) { m.IfAbsent = true } }

// IfVersion stores only if the entry's current version is v (compare and
// set); v = 0 means the key must not exist.
func IfVersion(v uint64) PutOption { return func(m *wire.CachePut) { m.IfVersion = wire.U64(v) } }

// Put stores value under key and returns the entry's new version.
func (k *Cache) Put(ctx context.Context, key string, value []byte, opts ...PutOption) (uint64, error) {
	if value == nil {
		value = []byte{}
	}
	m := &wire.CachePut{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Key: key, Value: value}
	for _, o := range opts {
		o(m)
	}
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message { m.RequestID = &id; return m })
	if err != nil {
		return 0, err
	}
	ok, isOK := reply.(*wire.CacheOK)
	if !isOK {
		return 0, unexpected(reply, "cache_put")
	}
	if ok.Version != nil {
		return *ok.Version, nil
	}
	return 0, nil
}

// Incr atomically adds delta (negative to decrement) to the integer
// stored under key and returns the new value: Redis's INCRBY. The value
// is stored as decimal text ("42"), so Get reads it and a Put of "10"
// can be incremented; a missing or expired key counts as 0. WithTTL sets
// the expiry of a key the increment creates; an existing key keeps its
// own (as Redis's INCR does). The other put options do not apply to it.
//
// It fails with a *CacheError matching ErrNotInteger when the value is
// not an integer, ErrOverflow when the result would leave the int64
// range, ErrStorage when a durable cache cannot log it (the entry is then
// unchanged), and with ErrUnsupported, without sending anything, when the
// broker did not grant the cache extension (wire.CapCacheExt).
func (k *Cache) Incr(ctx context.Context, key string, delta int64, opts ...PutOption) (int64, error) {
	var p wire.CachePut
	for _, o := range opts {
		o(&p)
	}
	if p.IfAbsent || p.IfVersion != nil {
		return 0, errIncrCondition
	}
	m := &wire.CacheIncr{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Key: key,
		Delta: wire.I64(delta), TTLMs: p.TTLMs}
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message { m.RequestID = id; return m })
	if err != nil {
		return 0, err
	}
	v, ok := reply.(*wire.CacheIncrValue)
	if !ok {
		return 0, unexpected(reply, "cache_incr")
	}
	return v.Value, nil
}

var errIncrCondition = errors.New("felix: cache incr: IfAbsent and IfVersion do not apply to an increment (only WithTTL)")

// Get returns the value under key and whether it was found (a live,
// unexpired entry).
func (k *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	it, err := k.GetItem(ctx, key)
	return it.Value, it.Found, err
}

// GetItem returns the entry under key with its version.
func (k *Cache) GetItem(ctx context.Context, key string) (CacheItem, error) {
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.CacheGet{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Key: key, RequestID: &id}
	})
	if err != nil {
		return CacheItem{}, err
	}
	v, ok := reply.(*wire.CacheValue)
	if !ok {
		return CacheItem{}, unexpected(reply, "cache_get")
	}
	it := CacheItem{Value: v.Value, Found: v.Value != nil}
	if v.Version != nil {
		it.Version = *v.Version
	}
	return it, nil
}

// Delete removes key and reports whether a live entry was removed.
func (k *Cache) Delete(ctx context.Context, key string) (bool, error) {
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.CacheDelete{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Key: key, RequestID: id}
	})
	if err != nil {
		return false, err
	}
	d, ok := reply.(*wire.CacheDeleted)
	if !ok {
		return false, unexpected(reply, "cache_delete")
	}
	return d.Deleted, nil
}

// TTL returns the remaining time to live of key, in whole milliseconds
// rounded up (at least 1 ms for a live entry): found is false for a
// missing or expired key, hasExpiry false for an entry that never expires.
func (k *Cache) TTL(ctx context.Context, key string) (ttl time.Duration, hasExpiry, found bool, err error) {
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.CacheTTL{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Key: key, RequestID: id}
	})
	if err != nil {
		return 0, false, false, err
	}
	t, ok := reply.(*wire.CacheTTLValue)
	if !ok {
		return 0, false, false, unexpected(reply, "cache_ttl")
	}
	if t.TTLMs != nil {
		return time.Duration(*t.TTLMs) * time.Millisecond, true, t.Found, nil
	}
	return 0, false, t.Found, nil
}

// MGet reads several keys in one request; items are in the keys' order.
func (k *Cache) MGet(ctx context.Context, keys []string) ([]CacheItem, error) {
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.CacheMGet{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, Keys: keys, RequestID: id}
	})
	if err != nil {
		return nil, err
	}
	v, ok := reply.(*wire.CacheValues)
	if !ok || len(v.Values) != len(keys) {
		return nil, unexpected(reply, "cache_mget")
	}
	out := make([]CacheItem, len(keys))
	for i, val := range v.Values {
		out[i] = CacheItem{Value: val, Found: val != nil}
	}
	return out, nil
}

func unexpected(m wire.Message, req string) error {
	return &ProtocolError{Detail: fmt.Sprintf("unexpected %q in reply to %s", m.Type(), req)}
}

// cacheRequest sends one request on a cache stream and waits for its
// reply. build receives the request id to put in the message.
//
// The hot path binds no context to the client's: the wait selects on the
// client's end directly (registering on the shared client context would
// contend across every concurrent request).
func (c *Client) cacheRequest(ctx context.Context, build func(id uint64) wire.Message) (wire.Message, error) {
	if c.opts.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
	}
	l := c.cacheLanes[c.nextCache.Add(1)%uint64(len(c.cacheLanes))]
	for {
		s := l.live()
		if s == nil {
			bctx, cancel := c.bind(ctx, false)
			var err error
			s, err = l.session(bctx)
			cancel()
			if err != nil {
				return nil, err
			}
		}
		ch, err := s.send(ctx, build)
		if errors.Is(err, errSessionGone) {
			continue // nothing was written: safe to send on a new session
		}
		if err != nil {
			return nil, err
		}
		select {
		case r := <-ch:
			if r.err != nil {
				return nil, r.err
			}
			return replyErr(r.msg)
		case <-ctx.Done():
			return nil, c.ctxErr(ctx)
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// replyErr turns error replies into Go errors.
func replyErr(m wire.Message) (wire.Message, error) {
	switch m := m.(type) {
	case *wire.ErrorMessage:
		return nil, &ServerError{Message: m.Message}
	case *wire.QueueError:
		return nil, &ServerError{Message: m.Message, Code: m.Code}
	case *wire.StreamError:
		return nil, &ServerError{Message: m.Message, Code: m.Code}
	case *wire.CacheError:
		e := &CacheError{Code: m.Code, Message: m.Message}
		if m.Version != nil {
			e.Version = *m.Version
		}
		return nil, e
	}
	return m, nil
}

// cacheLane is one long-lived authenticated cache stream of the pool.
type cacheLane struct {
	c    *Client
	slot *connSlot
	open gate

	mu   sync.Mutex
	sess *cacheSession
}

type cacheReply struct {
	msg wire.Message
	err error
}

// cacheSession is one authenticated stream carrying cache requests. The
// broker answers a stream's requests in order, so replies are matched to
// requests first in, first out (the reference's plain `error` reply carries
// no request id); ids are checked where present.
type cacheSession struct {
	c      *Client
	str    *quic.Stream
	r      *wire.Reader
	nextID atomic.Uint64
	bin    bool // gets and puts go as binary frames (CapCacheBin granted)
	ext    bool // the broker granted CapCacheExt (cache_incr, cache_expire, cache_scan need it)

	// q carries the requests to the stream (see writeQueue); reply slots
	// are queued under q.mu too, so replies come back in queue order.
	q *writeQueue

	// Token rotation (see rotate.go and pubSession): life is the validity
	// of the stream's token, rot schedules the move to a fresh token;
	// once retiring is set, requests go to the lane's new session
	// (errSessionGone) and this one ends when its replies are in.
	life       tokenLife
	rot        rotation
	retiring   atomic.Bool
	sendClosed atomic.Bool

	mu      sync.Mutex
	pending []pendingCache
	err     error
	done    chan struct{}
}

type pendingCache struct {
	id uint64
	ch chan cacheReply
}

func (l *cacheLane) live() *cacheSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess != nil && l.sess.alive() { // a failed session's done is closed (err is set first, under its own lock)
		return l.sess
	}
	return nil
}

func (l *cacheLane) session(ctx context.Context) (*cacheSession, error) {
	if s := l.live(); s != nil {
		return s, nil
	}
	if !l.open.enter(ctx) {
		return nil, l.c.ctxErr(ctx)
	}
	defer l.open.leave()
	for attempt := 1; ; attempt++ {
		if s := l.live(); s != nil {
			return s, nil
		}
		s, err := l.openSession(ctx, "")
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrDisconnected) || l.c.opts.Reconnect.Disabled || ctx.Err() != nil {
			return nil, err
		}
		if err := l.c.reopenWait(ctx, l.slot, attempt); err != nil {
			return nil, err
		}
	}
}

// openSession opens a session authenticated with token (empty: a token
// from Client.token) and makes it the lane's.
func (l *cacheLane) openSession(ctx context.Context, token string) (*cacheSession, error) {
	as, err := l.c.openAuthedStream(ctx, l.slot, "cache", token)
	if err != nil {
		return nil, err
	}
	s := &cacheSession{c: l.c, str: as.str, r: as.r, life: as.life, done: make(chan struct{}),
		ext: as.flags&wire.CapCacheExt != 0}
	s.q = newWriteQueue(as.str, s.done, l.c.ctx.Done())
	if as.flags&wire.CapCacheBin != 0 && !l.c.opts.JSONCache {
		s.bin = true
		as.r.AllowFlags(wire.FlagBinaryCache)
	}
	flush := func() {
		s.q.run(func(err error) { s.fail(&ConnectionError{Op: "cache", Err: fmt.Errorf("write: %w", err)}) })
	}
	if !l.c.goTracked(s.readLoop) || !l.c.goTracked(flush) {
		s.fail(ErrClosed)
		return nil, ErrClosed
	}
	l.mu.Lock()
	l.sess = s
	l.mu.Unlock()
	d, ok := sessionRotateDelay(time.Now(), s.life)
	s.rot.schedule(l.c, d, ok, func() { l.rotate(s) })
	return s, nil
}

// rotate moves the lane from old to a session authenticated with a fresh
// token, before old's token expires (see rotate.go). Requests go to the
// new session at once; old ends once it has its replies.
func (l *cacheLane) rotate(old *cacheSession) {
	ctx, cancel := l.c.rotateCtx()
	defer cancel()
	s, err := replaceSession(ctx, l.c, l.open, l.live, old, old.life.exp, l.openSession)
	if s == nil {
		if err != nil {
			l.c.logRotation("cache", old.life.exp, err)
			old.rot.retry(l.c, old.life.exp, func() { l.rotate(old) })
		}
		return
	}
	l.c.logRotation("cache", old.life.exp, nil)
	old.retire(ctx)
}

// retire ends a session a rotation replaced: new requests go to the new
// session, the send side is finished once what is queued has been written,
// and the session ends when the broker, having answered every request,
// ends its side. If that takes longer than ctx allows, the session fails.
func (s *cacheSession) retire(ctx context.Context) {
	s.rot.stop()
	s.retiring.Store(true)
	if err := endStream(ctx, s.q, s.alive, s.closeSend, s.done); err != nil && s.alive() {
		s.fail(retireErr("cache", err))
	}
}

func (s *cacheSession) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *cacheSession) closeSend() error {
	err := s.str.Close()
	if err == nil {
		s.sendClosed.Store(true)
	}
	return err
}

// send queues a reply slot and the request (see writeQueue).
func (s *cacheSession) send(ctx context.Context, build func(id uint64) wire.Message) (chan cacheReply, error) {
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.waitRoom(ctx); err != nil {
		return nil, err
	}
	if s.retiring.Load() { // a rotation replaced the session
		return nil, errSessionGone
	}
	id := s.nextID.Add(1)
	start := len(q.buf)
	var err error
	q.buf, err = s.appendRequest(q.buf, id, build(id))
	if err == nil {
		if err = s.c.checkFrame(q.buf[start:]); err != nil {
			err = fmt.Errorf("%w: %w", ErrValueTooLarge, err)
		}
	}
	if err != nil {
		q.buf = q.buf[:start]
		return nil, err
	}
	ch := make(chan cacheReply, 1)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		q.buf = q.buf[:start]
		return nil, errSessionGone
	}
	alone := len(s.pending) == 0
	s.pending = append(s.pending, pendingCache{id: id, ch: ch})
	s.mu.Unlock()
	q.commit(start, alone)
	return ch, nil
}

// appendRequest appends m as a binary cache frame when the session speaks
// them and m is a get or a put, and as JSON otherwise. What a binary frame
// cannot carry (a name or key over 64 KiB) goes as JSON too, whose encoder
// reports whatever is really wrong with it.
func (s *cacheSession) appendRequest(dst []byte, id uint64, m wire.Message) ([]byte, error) {
	if laterExt(m) && !s.ext {
		// A broker without the extension would reset the stream, failing
		// every request in flight on it.
		return dst, fmt.Errorf("%w: %s needs the cache extension (capability %#04x)", ErrUnsupported, m.Type(), wire.CapCacheExt)
	}
	if s.bin {
		var b []byte
		err := errors.ErrUnsupported
		switch m := m.(type) {
		case *wire.CacheGet:
			b, err = wire.AppendCacheBinGetFrame(dst, id, m.TenantID, m.Namespace, m.Cache, m.Key)
		case *wire.CachePut:
			b, err = wire.AppendCacheBinPutFrame(dst, id, m)
		}
		if err == nil {
			return b, nil
		}
	}
	return wire.AppendMessageFrame(dst, m)
}

// laterExt reports whether m is a request of the cache extension that
// came after the capability itself (cache_incr, cache_expire,
// cache_scan), which the SDK checks the broker granted before sending.
func laterExt(m wire.Message) bool {
	switch m.(type) {
	case *wire.CacheIncr, *wire.CacheExpire, *wire.CacheScan:
		return true
	}
	return false
}

func (s *cacheSession) readLoop() {
	for {
		f, err := s.r.ReadFrame()
		if err != nil {
			s.fail(&ConnectionError{Op: "cache", Err: err})
			return
		}
		var m wire.Message
		switch {
		case f.Flags == 0:
			m, err = wire.DecodeMessage(f.Payload)
		case f.Flags == wire.FlagBinaryCache && s.bin:
			m, err = decodeBinaryReply(f.Payload)
		default:
			s.fail(&ProtocolError{Detail: fmt.Sprintf("unexpected frame flags %#04x on a cache stream", f.Flags)})
			return
		}
		if err != nil {
			s.fail(&ProtocolError{Detail: err.Error()})
			return
		}
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.mu.Unlock()
			s.fail(&ProtocolError{Detail: fmt.Sprintf("unsolicited %q on a cache stream", m.Type())})
			return
		}
		p := s.pending[0]
		s.pending[0] = pendingCache{}
		s.pending = s.pending[1:]
		s.mu.Unlock()
		if id, ok := replyID(m); ok && id != p.id {
			s.fail(&ProtocolError{Detail: fmt.Sprintf("reply for request %d while %d was next", id, p.id)})
			p.ch <- cacheReply{err: &ProtocolError{Detail: "reply out of order"}}
			return
		}
		p.ch <- cacheReply{msg: m}
	}
}

// binaryValue holds a decoded binary reply as the JSON message it stands
// for, with the fields it points to, in one allocation.
type binaryValue struct {
	value       wire.CacheValue
	ok          wire.CacheOK
	id, version uint64
}

// decodeBinaryReply turns a binary cache reply into the message the JSON
// path would have produced (cache_value or cache_ok with a version), so
// the reply matching and the callers are the same for both encodings. The
// value is copied: the frame is the reader's buffer.
func decodeBinaryReply(payload []byte) (wire.Message, error) {
	var r wire.CacheBinReply
	if err := wire.DecodeCacheBinReply(payload, &r); err != nil {
		return nil, err
	}
	b := &binaryValue{id: r.RequestID, version: r.Version}
	switch r.Op {
	case wire.CacheBinOK:
		b.ok = wire.CacheOK{RequestID: r.RequestID, Version: &b.version}
		return &b.ok, nil
	case wire.CacheBinValue:
		b.value.Value = append(make([]byte, 0, len(r.Value)), r.Value...) // non-nil: a hit
		b.value.Version = &b.version
	}
	b.value.RequestID = &b.id
	return &b.value, nil
}

// replyID returns the request id a reply carries, if any.
func replyID(m wire.Message) (uint64, bool) {
	switch m := m.(type) {
	case *wire.CacheOK:
		return m.RequestID, true
	case *wire.CacheValue:
		if m.RequestID != nil {
			return *m.RequestID, true
		}
	case *wire.CacheDeleted:
		return m.RequestID, true
	case *wire.CacheTTLValue:
		return m.RequestID, true
	case *wire.CacheValues:
		return m.RequestID, true
	case *wire.CacheIncrValue:
		return m.RequestID, true
	case *wire.CacheExpireResult:
		return m.RequestID, true
	case *wire.CacheScanPage:
		return m.RequestID, true
	case *wire.CacheError:
		return m.RequestID, true
	case *wire.QueueStatsValue:
		return m.RequestID, true
	case *wire.QueueOK:
		return m.RequestID, true
	case *wire.StreamPurged:
		return m.RequestID, true
	case *wire.CacheFlushed:
		return m.RequestID, true
	case *wire.StreamError:
		return m.RequestID, true
	case *wire.QueueError:
		if m.RequestID != nil {
			return *m.RequestID, true
		}
	}
	return 0, false
}

// fail ends the session; every waiting request gets err. The stream is
// cancelled both ways, unless both sides had finished it (cleanEnd).
func (s *cacheSession) fail(err error) {
	clean := cleanEnd(s.sendClosed.Load(), err)
	if s.c.isClosed() {
		err = ErrClosed
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	close(s.done)
	s.mu.Unlock()
	s.rot.stop()
	for _, p := range pending {
		p.ch <- cacheReply{err: err}
	}
	s.str.CancelRead(streamCodeCancel)
	if !clean {
		s.str.CancelWrite(streamCodeCancel)
	}
}
