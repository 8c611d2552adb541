package wire

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// AppendMessage appends the JSON encoding of m to dst. The output is
// byte-identical to the reference (serde_json compact): "type" first, then
// the fields in declaration order, optional fields omitted when nil, binary
// fields as standard padded base64, integers as numbers. Strings with
// invalid UTF-8 are rejected.
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	e := encoder{buf: dst}
	e.buf = append(e.buf, `{"type":"`...)
	e.buf = append(e.buf, m.Type()...)
	e.buf = append(e.buf, '"')
	m.appendFields(&e)
	e.buf = append(e.buf, '}')
	if e.err != nil {
		return dst, fmt.Errorf("encode %s: %w", m.Type(), e.err)
	}
	return e.buf, nil
}

// AppendMessageFrame appends a complete frame (header, flags 0) holding the
// JSON encoding of m.
func AppendMessageFrame(dst []byte, m Message) ([]byte, error) {
	at := len(dst)
	dst = AppendHeader(dst, 0, 0)
	out, err := AppendMessage(dst, m)
	if err != nil {
		return dst[:at], err
	}
	putLength(out, at)
	return out, nil
}

// EncodeMessage returns the JSON payload of m in a new slice.
func EncodeMessage(m Message) ([]byte, error) { return AppendMessage(nil, m) }

type encoder struct {
	buf []byte
	err error
}

func (e *encoder) key(name string) {
	e.buf = append(e.buf, ',', '"')
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, '"', ':')
}

func (e *encoder) str(name, v string) {
	e.key(name)
	b, err := jsontext.AppendQuote(e.buf, v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("field %s: %w", name, ErrInvalidUTF8)
	}
	e.buf = b
}

func (e *encoder) u64(name string, v uint64) {
	e.key(name)
	e.buf = strconv.AppendUint(e.buf, v, 10)
}

func (e *encoder) nullableU64(name string, v *uint64) {
	if v != nil {
		e.u64(name, *v)
		return
	}
	e.key(name)
	e.buf = append(e.buf, "null"...)
}

func (e *encoder) boolean(name string, v bool) {
	e.key(name)
	e.buf = strconv.AppendBool(e.buf, v)
}

func (e *encoder) optU64(name string, v *uint64) {
	if v != nil {
		e.u64(name, *v)
	}
}

func (e *encoder) b64(name string, v []byte) {
	e.key(name)
	e.quotedB64(v)
}

func (e *encoder) quotedB64(v []byte) {
	e.buf = append(e.buf, '"')
	e.buf = base64.StdEncoding.AppendEncode(e.buf, v)
	e.buf = append(e.buf, '"')
}

func (e *encoder) b64List(name string, vs [][]byte) {
	e.key(name)
	e.buf = append(e.buf, '[')
	for i, v := range vs {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.quotedB64(v)
	}
	e.buf = append(e.buf, ']')
}

func (e *encoder) optAck(v *AckMode) {
	if v == nil {
		return
	}
	switch *v {
	case AckNone, AckPerMessage, AckPerBatch:
		e.key("ack")
		e.buf = append(e.buf, '"')
		e.buf = append(e.buf, v.String()...)
		e.buf = append(e.buf, '"')
	default:
		if e.err == nil {
			e.err = fmt.Errorf("field ack: %w (%d)", ErrInvalidAckMode, uint8(*v))
		}
	}
}

func (e *encoder) scope3(t, ns, s string) {
	e.str("tenant_id", t)
	e.str("namespace", ns)
	e.str("stream", s)
}

func (e *encoder) cacheScope(t, ns, c, k string) {
	e.str("tenant_id", t)
	e.str("namespace", ns)
	e.str("cache", c)
	e.str("key", k)
}

func (m *Auth) appendFields(e *encoder) {
	e.str("tenant_id", m.TenantID)
	e.str("token", m.Token)
	if m.ClientFlags != nil {
		e.u64("client_flags", uint64(*m.ClientFlags))
	}
}

func (m *AuthOK) appendFields(e *encoder) { e.u64("server_flags", uint64(m.ServerFlags)) }

func (m *Publish) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.b64("payload", m.Payload)
	e.optU64("request_id", m.RequestID)
	e.optAck(m.Ack)
}

func (m *PublishBatch) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.b64List("payloads", m.Payloads)
	e.optU64("request_id", m.RequestID)
	e.optAck(m.Ack)
}

func (m *Subscribe) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.optU64("subscription_id", m.SubscriptionID)
	e.start(m.Start)
}

// start writes an optional start position ("latest", "earliest",
// {"offset":N} or {"time_ms":N}).
func (e *encoder) start(p *StartPosition) {
	if p != nil {
		e.key("start")
		switch p.Kind {
		case StartLatest:
			e.buf = append(e.buf, `"latest"`...)
		case StartEarliest:
			e.buf = append(e.buf, `"earliest"`...)
		case StartOffset:
			e.buf = append(e.buf, `{"offset":`...)
			e.buf = strconv.AppendUint(e.buf, p.Offset, 10)
			e.buf = append(e.buf, '}')
		case StartTime:
			e.buf = append(e.buf, `{"time_ms":`...)
			e.buf = strconv.AppendUint(e.buf, p.TimeMs, 10)
			e.buf = append(e.buf, '}')
		default:
			if e.err == nil {
				e.err = fmt.Errorf("field start: unknown kind %d", p.Kind)
			}
		}
	}
}

func (m *Subscribed) appendFields(e *encoder)       { e.u64("subscription_id", m.SubscriptionID) }
func (m *EventStreamHello) appendFields(e *encoder) { e.u64("subscription_id", m.SubscriptionID) }

func (m *Event) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.b64("payload", m.Payload)
	e.optU64("offset", m.Offset)
}

func (m *EventBatch) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.b64List("payloads", m.Payloads)
	e.optU64("base_offset", m.BaseOffset)
}

func (m *CachePut) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	e.b64("value", m.Value)
	e.optU64("request_id", m.RequestID)
	e.nullableU64("ttl_ms", m.TTLMs)
	if m.IfAbsent {
		e.boolean("if_absent", true)
	}
	e.optU64("if_version", m.IfVersion)
}

func (m *CacheGet) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	e.optU64("request_id", m.RequestID)
}

func (m *CacheValue) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	if m.Value == nil {
		e.key("value")
		e.buf = append(e.buf, "null"...)
	} else {
		e.b64("value", m.Value)
	}
	e.optU64("request_id", m.RequestID)
	e.optU64("version", m.Version)
}

func (m *CacheOK) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.optU64("version", m.Version)
}
func (m *PublishOK) appendFields(e *encoder) { e.u64("request_id", m.RequestID) }

func (m *PublishError) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.str("message", m.Message)
}

func (m *OK) appendFields(*encoder) {}

func (m *ErrorMessage) appendFields(e *encoder) { e.str("message", m.Message) }

func (m *SubscribeCursorError) appendFields(e *encoder) {
	switch m.Reason {
	case CursorTooOld, CursorInFuture:
		e.str("reason", string(m.Reason))
	default:
		if e.err == nil {
			e.err = fmt.Errorf("field reason: unknown cursor error reason %q", m.Reason)
		}
	}
	e.u64("requested", m.Requested)
	e.u64("available", m.Available)
}

func (m *CacheDelete) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	e.u64("request_id", m.RequestID)
}

func (m *CacheDeleted) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.boolean("deleted", m.Deleted)
}

func (m *CacheTTL) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	e.u64("request_id", m.RequestID)
}

func (m *CacheTTLValue) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.boolean("found", m.Found)
	e.nullableU64("ttl_ms", m.TTLMs)
}

func (m *CacheMGet) appendFields(e *encoder) {
	e.str("tenant_id", m.TenantID)
	e.str("namespace", m.Namespace)
	e.str("cache", m.Cache)
	e.strList("keys", m.Keys)
	e.u64("request_id", m.RequestID)
}

func (m *CacheValues) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.key("values")
	e.buf = append(e.buf, '[')
	for i, v := range m.Values {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if v == nil {
			e.buf = append(e.buf, "null"...)
		} else {
			e.quotedB64(v)
		}
	}
	e.buf = append(e.buf, ']')
}

func (m *CacheError) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.str("code", m.Code)
	e.str("message", m.Message)
	e.optU64("version", m.Version)
}

func (m *QueueJoin) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.str("group", m.Group)
	if m.Consumer != nil {
		e.str("consumer", *m.Consumer)
	}
	e.optU64("prefetch", m.Prefetch)
	e.start(m.Start)
}

func (m *QueueJoined) appendFields(e *encoder) {
	e.str("group", m.Group)
	e.str("consumer", m.Consumer)
	e.u64("prefetch", m.Prefetch)
}

func (m *QueueAck) appendFields(e *encoder) { e.offsetsAndID(m.Offsets, m.RequestID) }

func (m *QueueLeave) appendFields(e *encoder) { e.offsetsAndID(m.Offsets, nil) }

// offsetsAndID writes "offsets":[…] and an optional "request_id".
func (e *encoder) offsetsAndID(offsets []uint64, requestID *uint64) {
	e.key("offsets")
	e.buf = append(e.buf, '[')
	for i, o := range offsets {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = strconv.AppendUint(e.buf, o, 10)
	}
	e.buf = append(e.buf, ']')
	e.optU64("request_id", requestID)
}

func (m *QueueNack) appendFields(e *encoder) {
	e.u64("offset", m.Offset)
	e.optU64("delay_ms", m.DelayMs)
	if m.Reason != nil {
		e.str("reason", *m.Reason)
	}
	e.optU64("request_id", m.RequestID)
}

func (m *QueueOK) appendFields(e *encoder) { e.u64("request_id", m.RequestID) }

func (m *QueueError) appendFields(e *encoder) {
	e.optU64("request_id", m.RequestID)
	e.str("code", m.Code)
	e.str("message", m.Message)
}

func (m *QueueStats) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.str("group", m.Group)
	e.u64("request_id", m.RequestID)
}

func (m *QueueDelete) appendFields(e *encoder) {
	e.scope3(m.TenantID, m.Namespace, m.Stream)
	e.str("group", m.Group)
	e.u64("request_id", m.RequestID)
}

func (m *QueueStatsValue) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.u64("members", m.Members)
	e.u64("in_flight", m.InFlight)
	e.u64("pending", m.Pending)
	e.u64("lag", m.Lag)
	e.u64("cursor", m.Cursor)
	e.u64("delivered", m.Delivered)
	e.u64("acked", m.Acked)
	e.u64("nacked", m.Nacked)
	e.u64("redelivered", m.Redelivered)
	e.u64("timed_out", m.TimedOut)
	e.u64("dead_lettered", m.DeadLettered)
	e.optU64("released", m.Released)
	e.optU64("lost", m.Lost)
}
