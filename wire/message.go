package wire

import (
	"fmt"
	"math"
	"time"
)

// MsgType is the "type" tag of a JSON message.
type MsgType string

// The JSON message types of felix-wire v1.
const (
	TypeAuth                 MsgType = "auth"
	TypeAuthOK               MsgType = "auth_ok"
	TypePublish              MsgType = "publish"
	TypePublishBatch         MsgType = "publish_batch"
	TypeSubscribe            MsgType = "subscribe"
	TypeSubscribed           MsgType = "subscribed"
	TypeEventStreamHello     MsgType = "event_stream_hello"
	TypeEvent                MsgType = "event"
	TypeEventBatch           MsgType = "event_batch"
	TypeCachePut             MsgType = "cache_put"
	TypeCacheGet             MsgType = "cache_get"
	TypeCacheValue           MsgType = "cache_value"
	TypeCacheOK              MsgType = "cache_ok"
	TypePublishOK            MsgType = "publish_ok"
	TypePublishError         MsgType = "publish_error"
	TypeOK                   MsgType = "ok"
	TypeError                MsgType = "error"
	TypeSubscribeCursorError MsgType = "subscribe_cursor_error"

	// Felix cache extensions (capability CapCacheExt).
	TypeCacheDelete   MsgType = "cache_delete"
	TypeCacheDeleted  MsgType = "cache_deleted"
	TypeCacheTTL      MsgType = "cache_ttl"
	TypeCacheTTLValue MsgType = "cache_ttl_value"
	TypeCacheMGet     MsgType = "cache_mget"
	TypeCacheValues   MsgType = "cache_values"
	TypeCacheError    MsgType = "cache_error"
	// cache_incr came after the others, under the same capability.
	TypeCacheIncr      MsgType = "cache_incr"
	TypeCacheIncrValue MsgType = "cache_incr_value"
	// cache_expire and cache_scan came later still, under the same capability.
	TypeCacheExpire       MsgType = "cache_expire"
	TypeCacheExpireResult MsgType = "cache_expire_result"
	TypeCacheScan         MsgType = "cache_scan"
	TypeCacheScanPage     MsgType = "cache_scan_page"

	// Felix queue extension (capability CapQueue).
	TypeQueueJoin       MsgType = "queue_join"
	TypeQueueJoined     MsgType = "queue_joined"
	TypeQueueAck        MsgType = "queue_ack"
	TypeQueueNack       MsgType = "queue_nack"
	TypeQueueLeave      MsgType = "queue_leave"
	TypeQueueOK         MsgType = "queue_ok"
	TypeQueueError      MsgType = "queue_error"
	TypeQueueStats      MsgType = "queue_stats"
	TypeQueueStatsValue MsgType = "queue_stats_value"
	TypeQueueDelete     MsgType = "queue_delete"

	// Felix request/reply extension (capability CapRequest).
	TypeServe          MsgType = "serve"
	TypeServing        MsgType = "serving"
	TypeServiceRequest MsgType = "service_request"
	TypeServiceReply   MsgType = "service_reply"
	TypeServiceError   MsgType = "service_error"
	TypeRequest        MsgType = "request"
	TypeReply          MsgType = "reply"
	TypeRequestError   MsgType = "request_error"
)

// Message is one JSON message. The concrete types are the structs below;
// optional fields are pointers and are omitted from the encoding when nil
// (except where the reference always writes them, noted per field).
type Message interface {
	Type() MsgType
	appendFields(e *encoder)
}

// AckMode says which acknowledgement a publish asks for.
type AckMode uint8

// Ack modes. The binary acked-publish prefix encodes PerMessage as 1 and
// PerBatch as 2; None has no binary encoding (use a plain publish batch).
const (
	AckNone       AckMode = 0
	AckPerMessage AckMode = 1
	AckPerBatch   AckMode = 2
)

func (a AckMode) String() string {
	switch a {
	case AckNone:
		return "none"
	case AckPerMessage:
		return "per_message"
	case AckPerBatch:
		return "per_batch"
	}
	return fmt.Sprintf("ack_mode(%d)", uint8(a))
}

// ParseAckMode parses the JSON spelling of an ack mode.
func ParseAckMode(s string) (AckMode, bool) {
	switch s {
	case "none":
		return AckNone, true
	case "per_message":
		return AckPerMessage, true
	case "per_batch":
		return AckPerBatch, true
	}
	return 0, false
}

// StartKind selects where a subscription starts.
type StartKind uint8

// Start positions: the tail (default), the oldest retained record, an
// exact offset, or (extension CapStartTime) a point in time.
const (
	StartLatest StartKind = iota
	StartEarliest
	StartOffset
	StartTime
)

// StartPosition is subscribe.start: "latest", "earliest", {"offset":N} or,
// with CapStartTime, {"time_ms":N}.
type StartPosition struct {
	Kind   StartKind
	Offset uint64 // used when Kind == StartOffset
	// TimeMs is a time in unix milliseconds, used when Kind == StartTime:
	// delivery starts at the first record published at or after it.
	TimeMs uint64
}

// StartAt returns the start position of the first record published at or
// after t (CapStartTime). Times before 1970 are 0: every record is after
// them.
func StartAt(t time.Time) StartPosition {
	return StartPosition{Kind: StartTime, TimeMs: uint64(max(t.UnixMilli(), 0))}
}

// UnixMicro is the time of a StartTime position in unix microseconds
// (the unit records are stamped in), math.MaxInt64 when it is beyond it.
func (p StartPosition) UnixMicro() int64 {
	if p.TimeMs > math.MaxInt64/1000 {
		return math.MaxInt64
	}
	return int64(p.TimeMs) * 1000
}

// Time is the time of a StartTime position. A TimeMs beyond what a
// time.Time holds in unix milliseconds (above 2^63-1) is that largest
// time: later than any record.
func (p StartPosition) Time() time.Time {
	return time.UnixMilli(int64(min(p.TimeMs, math.MaxInt64)))
}

// CursorErrorReason is subscribe_cursor_error.reason.
type CursorErrorReason string

// Cursor error reasons.
const (
	CursorTooOld   CursorErrorReason = "too_old"
	CursorInFuture CursorErrorReason = "in_future"
)

// Auth is the first frame on every client-opened stream.
type Auth struct {
	TenantID    string
	Token       string
	ClientFlags *uint16 // capability offer; nil for a legacy client
}

// AuthOK answers an Auth that carried ClientFlags.
type AuthOK struct{ ServerFlags uint16 }

// Publish publishes one payload. A nil Ack means per_message to the broker.
type Publish struct {
	TenantID, Namespace, Stream string
	Payload                     []byte
	RequestID                   *uint64
	Ack                         *AckMode
}

// PublishBatch publishes several payloads. A nil Ack means per_batch.
type PublishBatch struct {
	TenantID, Namespace, Stream string
	Payloads                    [][]byte
	RequestID                   *uint64
	Ack                         *AckMode
}

// Subscribe asks for a subscription to a stream.
type Subscribe struct {
	TenantID, Namespace, Stream string
	SubscriptionID              *uint64
	Start                       *StartPosition // nil means latest
}

// Subscribed answers a successful Subscribe.
type Subscribed struct{ SubscriptionID uint64 }

// EventStreamHello is the first frame on a broker-opened event stream.
type EventStreamHello struct{ SubscriptionID uint64 }

// Event is one delivered event (defined by the protocol; the reference
// broker delivers binary batches instead).
type Event struct {
	TenantID, Namespace, Stream string
	Payload                     []byte
	Offset                      *uint64
}

// EventBatch is a JSON batch of events (defined; not emitted by brokers).
type EventBatch struct {
	TenantID, Namespace, Stream string
	Payloads                    [][]byte
	BaseOffset                  *uint64
}

// CachePut stores a value. TTLMs is always encoded (null when nil = no
// expiry). IfAbsent and IfVersion are Felix extensions (CapCacheExt):
// store only if the key is absent, or only if its current version equals
// IfVersion (0 = the key must not exist); omitted when unset.
type CachePut struct {
	TenantID, Namespace, Cache, Key string
	Value                           []byte
	RequestID                       *uint64
	TTLMs                           *uint64
	IfAbsent                        bool
	IfVersion                       *uint64
}

// CacheGet reads a value.
type CacheGet struct {
	TenantID, Namespace, Cache, Key string
	RequestID                       *uint64
}

// CacheValue answers CacheGet. Value is always encoded: nil encodes as null
// (a miss); a hit with an empty value must be a non-nil empty slice.
type CacheValue struct {
	TenantID, Namespace, Cache, Key string
	Value                           []byte
	RequestID                       *uint64
	Version                         *uint64 // extension: the entry's version on a hit
}

// CacheOK answers a CachePut that carried a request id. Version (an
// extension) is the entry's new version.
type CacheOK struct {
	RequestID uint64
	Version   *uint64
}

// CacheDelete removes a key (extension).
type CacheDelete struct {
	TenantID, Namespace, Cache, Key string
	RequestID                       uint64
}

// CacheDeleted answers CacheDelete: whether a live entry was removed.
type CacheDeleted struct {
	RequestID uint64
	Deleted   bool
}

// CacheTTL asks for a key's remaining time to live (extension).
type CacheTTL struct {
	TenantID, Namespace, Cache, Key string
	RequestID                       uint64
}

// CacheTTLValue answers CacheTTL. TTLMs is always encoded: null when the
// entry has no expiry (or Found is false).
type CacheTTLValue struct {
	RequestID uint64
	Found     bool
	TTLMs     *uint64
}

// CacheMGet reads several keys at once (extension).
type CacheMGet struct {
	TenantID, Namespace, Cache string
	Keys                       []string
	RequestID                  uint64
}

// CacheValues answers CacheMGet: one value per key, in order, null for a
// miss (nil here).
type CacheValues struct {
	RequestID uint64
	Values    [][]byte
}

// CacheError reports a failed extension request or a conditional put that
// did not apply. Code is "condition_failed" (Version is the current version,
// 0 if absent), "too_large", "storage" (CacheCodeStorage), "not_integer"
// (CacheCodeNotInteger), "overflow" (CacheCodeOverflow) or "invalid".
type CacheError struct {
	RequestID uint64
	Code      string
	Message   string
	Version   *uint64
}

// PublishOK acknowledges a JSON publish.
type PublishOK struct{ RequestID uint64 }

// PublishError rejects a JSON publish.
type PublishError struct {
	RequestID uint64
	Message   string
}

// OK is the generic success reply.
type OK struct{}

// ErrorMessage is the generic error reply ({"type":"error"}).
type ErrorMessage struct{ Message string }

// SubscribeCursorError rejects a subscribe whose start is out of range.
// Available is the oldest retained offset (too_old) or the tail (in_future).
type SubscribeCursorError struct {
	Reason    CursorErrorReason
	Requested uint64
	Available uint64
}

func (*Auth) Type() MsgType                 { return TypeAuth }
func (*AuthOK) Type() MsgType               { return TypeAuthOK }
func (*Publish) Type() MsgType              { return TypePublish }
func (*PublishBatch) Type() MsgType         { return TypePublishBatch }
func (*Subscribe) Type() MsgType            { return TypeSubscribe }
func (*Subscribed) Type() MsgType           { return TypeSubscribed }
func (*EventStreamHello) Type() MsgType     { return TypeEventStreamHello }
func (*Event) Type() MsgType                { return TypeEvent }
func (*EventBatch) Type() MsgType           { return TypeEventBatch }
func (*CachePut) Type() MsgType             { return TypeCachePut }
func (*CacheGet) Type() MsgType             { return TypeCacheGet }
func (*CacheValue) Type() MsgType           { return TypeCacheValue }
func (*CacheOK) Type() MsgType              { return TypeCacheOK }
func (*PublishOK) Type() MsgType            { return TypePublishOK }
func (*PublishError) Type() MsgType         { return TypePublishError }
func (*OK) Type() MsgType                   { return TypeOK }
func (*ErrorMessage) Type() MsgType         { return TypeError }
func (*SubscribeCursorError) Type() MsgType { return TypeSubscribeCursorError }
func (*CacheDelete) Type() MsgType          { return TypeCacheDelete }
func (*CacheDeleted) Type() MsgType         { return TypeCacheDeleted }
func (*CacheTTL) Type() MsgType             { return TypeCacheTTL }
func (*CacheTTLValue) Type() MsgType        { return TypeCacheTTLValue }
func (*CacheMGet) Type() MsgType            { return TypeCacheMGet }
func (*CacheValues) Type() MsgType          { return TypeCacheValues }
func (*CacheError) Type() MsgType           { return TypeCacheError }
func (*QueueJoin) Type() MsgType            { return TypeQueueJoin }
func (*QueueJoined) Type() MsgType          { return TypeQueueJoined }
func (*QueueAck) Type() MsgType             { return TypeQueueAck }
func (*QueueNack) Type() MsgType            { return TypeQueueNack }
func (*QueueLeave) Type() MsgType           { return TypeQueueLeave }
func (*QueueOK) Type() MsgType              { return TypeQueueOK }
func (*QueueError) Type() MsgType           { return TypeQueueError }
func (*QueueStats) Type() MsgType           { return TypeQueueStats }
func (*QueueStatsValue) Type() MsgType      { return TypeQueueStatsValue }
func (*QueueDelete) Type() MsgType          { return TypeQueueDelete }

// U64 returns a pointer to v, for optional fields.
func U64(v uint64) *uint64 { return &v }

// U16 returns a pointer to v, for optional fields.
func U16(v uint16) *uint16 { return &v }

// Ack returns a pointer to a, for optional fields.
func Ack(a AckMode) *AckMode { return &a }

// QueueJoin makes the stream a consumer of group on a stream (extension).
// Consumer names the member (default: assigned); Prefetch bounds its
// unacknowledged deliveries (default: the broker's).
type QueueJoin struct {
	TenantID, Namespace, Stream string
	Group                       string
	Consumer                    *string
	Prefetch                    *uint64
	// Start is where the group starts when this join creates it (nil:
	// the oldest record); a group that exists keeps its position. Only
	// for a peer that negotiated CapManage.
	Start *StartPosition
}

// QueueJoined answers QueueJoin.
type QueueJoined struct {
	Group, Consumer string
	Prefetch        uint64
}

// QueueAck acknowledges deliveries by offset. With a request id the broker
// answers QueueOK once the acks are durable.
type QueueAck struct {
	Offsets   []uint64
	RequestID *uint64
}

// QueueNack returns a delivery for redelivery after DelayMs.
type QueueNack struct {
	Offset    uint64
	DelayMs   *uint64
	Reason    *string
	RequestID *uint64
}

// QueueLeave announces that the consumer leaves (it finishes the stream
// next). Offsets are the deliveries its application took and has not
// acked or nacked: they count as attempts, as on any leave. Every other
// delivery in flight to it (buffered, or still on its way) was never seen:
// it goes back without counting as an attempt. No answer.
type QueueLeave struct {
	Offsets []uint64
}

// QueueOK answers a QueueAck, QueueNack or QueueRelease that carried a
// request id.
type QueueOK struct{ RequestID uint64 }

// QueueError reports a failed queue request. Code is "not_in_flight",
// "invalid" or "internal".
type QueueError struct {
	RequestID *uint64
	Code      string
	Message   string
}

// QueueStats asks for a group's counters.
type QueueStats struct {
	TenantID, Namespace, Stream, Group string
	RequestID                          uint64
}

// QueueStatsValue answers QueueStats. Released (deliveries given back
// unseen by a leaving consumer) and Lost (records the stream dropped before
// they were done) came later: optional, always sent by this broker.
type QueueStatsValue struct {
	RequestID                                                     uint64
	Members, InFlight, Pending                                    uint64
	Lag, Cursor                                                   uint64
	Delivered, Acked, Nacked, Redelivered, TimedOut, DeadLettered uint64
	Released, Lost                                                *uint64
}

// QueueDelete deletes a consumer group: its consumers are ended with
// queue_error "queue group closed: group deleted" and its state (acks,
// attempt counts) is removed, so the name then starts a new group at the
// stream's oldest record. Answered by QueueOK, or QueueError with code
// "not_found", "forbidden" or "invalid".
type QueueDelete struct {
	TenantID, Namespace, Stream, Group string
	RequestID                          uint64
}
