package server

import (
	"errors"
	"fmt"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/wire"
)

// Purge and flush answers share their codes: forbidden, not_found,
// storage, invalid, unavailable (wire.StreamCode*).

// streamPurge removes every event a stream holds (extension CapManage). It
// needs stream.manage on the stream, as deleting a consumer group does;
// it never creates a stream, even under auto-create.
func (ctl *control) streamPurge(m *wire.StreamPurge) error {
	fail := func(code, msg string) error {
		return ctl.reply(&wire.StreamError{RequestID: m.RequestID, Code: code, Message: msg})
	}
	if done, err := ctl.admitManage(m.Type(), m.TenantID, auth.ActionStreamManage, StreamResource(m.TenantID, m.Namespace, m.Stream), fail); done {
		return err
	}
	st, err := ctl.c.s.opts.Broker.LookupStream(m.TenantID, m.Namespace, m.Stream)
	if err != nil {
		return fail(purgeCode(err), err.Error())
	}
	res, err := st.Purge()
	if err != nil {
		return fail(purgeCode(err), err.Error())
	}
	ctl.c.s.opts.Logger.Info("stream purged", "stream", st.Key().String(), "purged", res.Purged, "offset", res.Offset,
		"subject", ctl.id.Subject)
	return ctl.reply(&wire.StreamPurged{RequestID: m.RequestID, Purged: res.Purged, Offset: res.Offset})
}

// admitManage runs the checks a management request starts with: the
// extension negotiated (else it is an unknown message), its tenant (else
// the stream ends with "tenant mismatch") and action on resource (else
// refuse answers forbidden). done reports that a check failed; err is
// then what the handler returns.
func (ctl *control) admitManage(t wire.MsgType, tenant, action, resource string, refuse func(code, msg string) error) (done bool, err error) {
	switch {
	case ctl.peer&wire.CapManage == 0:
		return true, errNotNegotiated(t)
	case ctl.otherTenant(tenant):
		return true, ctl.fail("tenant mismatch")
	case !ctl.authorize(action, resource):
		return true, refuse(wire.StreamCodeForbidden, "forbidden")
	}
	return false, nil
}

// purgeCode is the stream_error code of a purge that failed with err.
func purgeCode(err error) string {
	switch {
	case errors.Is(err, broker.ErrStreamNotFound), errors.Is(err, broker.ErrStreamDeleted):
		return wire.StreamCodeNotFound
	case errors.Is(err, broker.ErrInvalidName):
		return wire.StreamCodeInvalid
	case errors.Is(err, broker.ErrClosed):
		return wire.StreamCodeUnavailable
	}
	return wire.StreamCodeStorage
}

// cacheFlush removes every entry of a cache (extension CapManage; Redis
// FLUSHDB for one cache). It needs cache.manage on the cache; it never
// creates a cache, even under auto-create.
func (ctl *control) cacheFlush(m *wire.CacheFlush) error {
	fail := func(code, msg string) error {
		return ctl.reply(&wire.CacheError{RequestID: m.RequestID, Code: code, Message: msg})
	}
	if done, err := ctl.admitManage(m.Type(), m.TenantID, auth.ActionCacheManage, CacheResource(m.TenantID, m.Namespace, m.Cache), fail); done {
		return err
	}
	scope := cache.Scope{Tenant: m.TenantID, Namespace: m.Namespace, Cache: m.Cache}
	// Not found, or deleted since it was looked up: the message of every
	// other request on a missing cache (see cacheFor).
	notFound := (&cache.NotFoundError{Scope: scope}).Error()
	var c *cache.Cache
	err := cache.ErrNotFound
	if caches := ctl.c.s.opts.Caches; caches != nil {
		c, err = caches.Get(scope)
	}
	if err != nil {
		return fail(wire.StreamCodeNotFound, notFound)
	}
	removed, err := c.Flush()
	switch {
	case errors.Is(err, cache.ErrDeleted):
		return fail(wire.StreamCodeNotFound, notFound)
	case err != nil:
		return fail(wire.CacheCodeStorage, err.Error())
	}
	ctl.c.s.opts.Logger.Info("cache flushed", "cache", scope.String(), "removed", removed, "subject", ctl.id.Subject)
	return ctl.reply(&wire.CacheFlushed{RequestID: m.RequestID, Removed: removed})
}

// groupStart resolves the start a queue_join asks for (extension
// CapManage) to the offset a group it creates starts at: nil without one.
// Latest is the stream's next offset (only records published from now
// on), earliest its oldest, a time the first record at or after it; an
// offset beyond the stream's end is refused, one below its oldest starts
// at the oldest (queue.Options.StartAt keeps it in range).
func (ctl *control) groupStart(st *broker.Stream, p *wire.StartPosition) (*uint64, error) {
	if p == nil {
		return nil, nil
	}
	if ctl.peer&wire.CapManage == 0 {
		return nil, fmt.Errorf("queue_join start needs the management extension (capability %#04x)", wire.CapManage)
	}
	lg := st.Log()
	if lg == nil {
		return nil, nil // not a log-backed stream: the join is refused for that
	}
	var off uint64
	switch p.Kind {
	case wire.StartLatest:
		off = lg.Next()
	case wire.StartEarliest:
		off = lg.Oldest()
	case wire.StartOffset:
		if next := lg.Next(); p.Offset > next {
			return nil, fmt.Errorf("queue_join start offset %d is beyond the end of %s (%d)", p.Offset, st.Key(), next)
		}
		off = p.Offset
	case wire.StartTime:
		var err error
		if off, err = lg.OffsetForTime(p.Time()); err != nil {
			return nil, fmt.Errorf("queue_join start time %d ms on %s: %w", p.TimeMs, st.Key(), err)
		}
	default:
		return nil, fmt.Errorf("queue_join start: unknown kind %d", p.Kind)
	}
	return &off, nil
}
