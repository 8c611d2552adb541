package wire

// Management requests (extension, capability CapManage): stream purge and
// cache flush (`nats stream purge`, RabbitMQ's queue.purge, Redis's
// FLUSHDB), and the start of a new consumer group (QueueJoin.Start,
// message.go). A client sends
// StreamPurge on a control stream and gets StreamPurged or StreamError,
// matched by request id. A purge removes every event the stream holds when
// the broker handles it; offsets are not reused (the next event gets the
// offset it would have had). CacheFlush removes every entry of one cache
// and is answered by CacheFlushed or CacheError.

// StreamPurge asks the broker to remove every event the stream holds.
// It needs the stream.manage permission.
type StreamPurge struct {
	TenantID, Namespace, Stream string
	RequestID                   uint64
}

// StreamPurged answers StreamPurge. Purged is the number of events removed
// (retained events only: a stream that had already dropped older events
// by retention or its replay ring's bound counts only what it still held).
// Offset is the first offset the stream now keeps: the offset its next
// event gets, events published concurrently with the purge aside.
type StreamPurged struct {
	RequestID uint64
	Purged    uint64
	Offset    uint64
}

// StreamError fails a StreamPurge. Code is one of the StreamCode
// constants; Message says why.
type StreamError struct {
	RequestID uint64
	Code      string
	Message   string
}

// Codes of StreamError.
const (
	StreamCodeForbidden   = "forbidden"   // no stream.manage permission on the stream
	StreamCodeNotFound    = "not_found"   // no such stream
	StreamCodeStorage     = "storage"     // the log could not be purged (nothing acknowledged is lost)
	StreamCodeInvalid     = "invalid"     // a malformed request (an invalid name)
	StreamCodeUnavailable = "unavailable" // the broker is shutting down
)

// CacheFlush removes every entry of a cache (Redis FLUSHDB for one
// cache). It needs the cache.manage permission and never creates a cache.
// Answered by CacheFlushed, or CacheError with code "forbidden",
// "not_found" or "storage" (a durable cache whose log failed during the
// flush: the entries were kept, unless the log had already been purged
// and only its closing record failed; flush again once the log works).
type CacheFlush struct {
	TenantID, Namespace, Cache string
	RequestID                  uint64
}

// CacheFlushed answers CacheFlush: Removed is the number of live entries
// removed.
type CacheFlushed struct {
	RequestID uint64
	Removed   uint64
}

// Message types of the management extension.
const (
	TypeStreamPurge  MsgType = "stream_purge"
	TypeStreamPurged MsgType = "stream_purged"
	TypeStreamError  MsgType = "stream_error"
	TypeCacheFlush   MsgType = "cache_flush"
	TypeCacheFlushed MsgType = "cache_flushed"
)

func (*StreamPurge) Type() MsgType  { return TypeStreamPurge }
func (*StreamPurged) Type() MsgType { return TypeStreamPurged }
func (*StreamError) Type() MsgType  { return TypeStreamError }
func (*CacheFlush) Type() MsgType   { return TypeCacheFlush }
func (*CacheFlushed) Type() MsgType { return TypeCacheFlushed }

func (m *CacheFlush) appendFields(e *encoder) {
	e.str("tenant_id", m.TenantID)
	e.str("namespace", m.Namespace)
	e.str("cache", m.Cache)
	e.u64("request_id", m.RequestID)
}

func (m *CacheFlushed) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.u64("removed", m.Removed)
}

func (m *StreamPurge) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.u64("request_id", m.RequestID)
}

func (m *StreamPurged) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.u64("purged", m.Purged)
	e.u64("offset", m.Offset)
}

func (m *StreamError) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.str("code", m.Code)
	e.str("message", m.Message)
}

func init() {
	specs[TypeStreamPurge] = msgSpec{allowed: scope3 | bit(fRequestID), required: scope3 | bit(fRequestID),
		build: func(f *fields) Message {
			return &StreamPurge{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				RequestID: f.num[fRequestID]}
		}}
	purged := bit(fRequestID, fPurged, fOffset)
	specs[TypeStreamPurged] = msgSpec{allowed: purged, required: purged,
		build: func(f *fields) Message {
			return &StreamPurged{RequestID: f.num[fRequestID], Purged: f.num[fPurged], Offset: f.num[fOffset]}
		}}
	flush := bit(fTenantID, fNamespace, fCache, fRequestID)
	specs[TypeCacheFlush] = msgSpec{allowed: flush, required: flush,
		build: func(f *fields) Message {
			return &CacheFlush{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				RequestID: f.num[fRequestID]}
		}}
	flushed := bit(fRequestID, fRemoved)
	specs[TypeCacheFlushed] = msgSpec{allowed: flushed, required: flushed,
		build: func(f *fields) Message { return &CacheFlushed{RequestID: f.num[fRequestID], Removed: f.num[fRemoved]} }}
	streamErr := bit(fRequestID, fCode, fMessage)
	specs[TypeStreamError] = msgSpec{allowed: streamErr, required: streamErr,
		build: func(f *fields) Message {
			return &StreamError{RequestID: f.num[fRequestID], Code: f.str[fCode], Message: f.str[fMessage]}
		}}
}
