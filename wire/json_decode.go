package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// DecodeMessage decodes a JSON message payload (a frame with flags 0).
//
// It follows the reference decoder (serde): the "type" tag may stand
// anywhere in the object; unknown fields are ignored; required fields must
// be present and non-null; optional fields may be absent or null; names are
// case-sensitive; duplicate names, invalid UTF-8, trailing data and
// non-integer numbers are errors. Every error wraps ErrInvalidJSON.
func DecodeMessage(payload []byte) (Message, error) {
	t, err := peekType(payload)
	if err != nil {
		return nil, err
	}
	spec, ok := specs[t]
	if !ok {
		return nil, jsonErr(0, fmt.Sprintf("unknown message type %q", t))
	}
	d := decoderPool.Get().(*jsonDecoder)
	defer decoderPool.Put(d)
	d.reset(payload)
	f := &d.fields
	*f = fields{}
	if err := d.readObject(spec.allowed, f); err != nil {
		return nil, err
	}
	if missing := spec.required &^ f.present; missing != 0 {
		return nil, jsonErr(len(payload), fmt.Sprintf("%s: missing field %q", t, fieldNames[lowestBit(missing)]))
	}
	if bad := spec.required &^ spec.nullable & f.null; bad != 0 {
		return nil, jsonErr(len(payload), fmt.Sprintf("%s: field %q must not be null", t, fieldNames[lowestBit(bad)]))
	}
	if spec.validate != nil {
		if err := spec.validate(f); err != nil {
			return nil, err
		}
	}
	return spec.build(f), nil
}

func jsonErr(off int, detail string) error {
	return decodeErr("json message", off, ErrInvalidJSON, detail)
}

// field identifies one JSON member name across all message types.
type field uint8

const (
	fTenantID field = iota
	fToken
	fClientFlags
	fServerFlags
	fNamespace
	fStream
	fCache
	fKey
	fPayload
	fPayloads
	fValue
	fRequestID
	fAck
	fSubscriptionID
	fStart
	fOffset
	fBaseOffset
	fTTLMs
	fMessage
	fReason
	fRequested
	fAvailable
	fIfAbsent
	fIfVersion
	fVersion
	fDeleted
	fFound
	fKeys
	fValues
	fCode
	fGroup
	fConsumer
	fPrefetch
	fOffsets
	fDelayMs
	fMembers
	fInFlight
	fPending
	fLag
	fCursor
	fDelivered
	fAcked
	fNacked
	fRedelivered
	fTimedOut
	fDeadLettered
	fReleased
	fLost
	fDelta       // cache_incr.delta: a signed integer
	fIntValue    // cache_incr_value.value: "value" as a signed integer, not base64
	fIntTTLMs    // cache_expire.ttl_ms: "ttl_ms" as a signed integer (a negative one is refused by the broker, not the decoder)
	fPrefix      // cache_scan.prefix
	fScanCursor  // cache_scan.cursor, cache_scan_page.cursor: "cursor" as a string (a key), not a u64
	fLimit       // cache_scan.limit
	fService     // serve, request: the service name
	fMaxInFlight // serve.max_in_flight
	fTimeoutMs   // request.timeout_ms
	fPurged      // stream_purged.purged
	fRemoved     // cache_flushed.removed
	numFields
)

type fieldMask uint64

// Every field must have a bit in a fieldMask: this fails to compile past 64.
var _ [64 - numFields]struct{}

func bit(fs ...field) fieldMask {
	var m fieldMask
	for _, f := range fs {
		m |= 1 << f
	}
	return m
}

func lowestBit(m fieldMask) field {
	for i := field(0); i < numFields; i++ {
		if m&(1<<i) != 0 {
			return i
		}
	}
	return numFields
}

var fieldNames = [numFields + 1]string{
	fTenantID: "tenant_id", fToken: "token", fClientFlags: "client_flags",
	fServerFlags: "server_flags", fNamespace: "namespace", fStream: "stream",
	fCache: "cache", fKey: "key", fPayload: "payload", fPayloads: "payloads",
	fValue: "value", fRequestID: "request_id", fAck: "ack",
	fSubscriptionID: "subscription_id", fStart: "start", fOffset: "offset",
	fBaseOffset: "base_offset", fTTLMs: "ttl_ms", fMessage: "message",
	fReason: "reason", fRequested: "requested", fAvailable: "available",
	fIfAbsent: "if_absent", fIfVersion: "if_version", fVersion: "version",
	fDeleted: "deleted", fFound: "found", fKeys: "keys", fValues: "values", fCode: "code",
	fGroup: "group", fConsumer: "consumer", fPrefetch: "prefetch", fOffsets: "offsets", fDelayMs: "delay_ms",
	fMembers: "members", fInFlight: "in_flight", fPending: "pending", fLag: "lag", fCursor: "cursor",
	fDelivered: "delivered", fAcked: "acked", fNacked: "nacked", fRedelivered: "redelivered",
	fTimedOut: "timed_out", fDeadLettered: "dead_lettered", fReleased: "released", fLost: "lost",
	fDelta: "delta", fIntValue: "value", fIntTTLMs: "ttl_ms", fPrefix: "prefix", fScanCursor: "cursor", fLimit: "limit",
	fService: "service", fMaxInFlight: "max_in_flight", fTimeoutMs: "timeout_ms", fPurged: "purged", fRemoved: "removed",
	numFields: "?",
}

// fieldByName finds the field named name among allowed: a name may stand
// for fields of different types in different messages ("value" is base64
// in cache_put, an integer in cache_incr_value; "cursor" a u64 in
// queue_stats_value, a string in cache_scan).
func fieldByName(name []byte, allowed fieldMask) (field, bool) {
	for i, n := range fieldNames[:numFields] {
		if allowed&(1<<i) != 0 && string(name) == n {
			return field(i), true
		}
	}
	return 0, false
}

// fields holds every decodable member; present marks keys seen, null marks
// keys whose value was JSON null.
type fields struct {
	present, null fieldMask
	str           [numFields]string
	num           [numFields]uint64
	payload       []byte
	value         []byte
	payloads      [][]byte
	values        [][]byte // nil entries are JSON null
	keys          []string
	offsets       []uint64
	flag          [numFields]bool
	ack           AckMode
	start         StartPosition
}

func (f *fields) optU64(id field) *uint64 {
	if f.present&^f.null&(1<<id) == 0 {
		return nil
	}
	v := f.num[id]
	return &v
}

func (f *fields) optI64(id field) *int64 {
	if f.present&^f.null&(1<<id) == 0 {
		return nil
	}
	v := int64(f.num[id])
	return &v
}

func (f *fields) optAck() *AckMode {
	if f.present&^f.null&(1<<fAck) == 0 {
		return nil
	}
	a := f.ack
	return &a
}

type msgSpec struct {
	allowed, required, nullable fieldMask
	validate                    func(f *fields) error // optional checks across fields
	build                       func(f *fields) Message
}

var (
	scope3     = bit(fTenantID, fNamespace, fStream)
	cacheScope = bit(fTenantID, fNamespace, fCache, fKey)
)

var specs = map[MsgType]msgSpec{
	TypeAuth: {allowed: bit(fTenantID, fToken, fClientFlags), required: bit(fTenantID, fToken),
		build: func(f *fields) Message {
			m := &Auth{TenantID: f.str[fTenantID], Token: f.str[fToken]}
			if v := f.optU64(fClientFlags); v != nil {
				m.ClientFlags = U16(uint16(*v))
			}
			return m
		}},
	TypeAuthOK: {allowed: bit(fServerFlags), required: bit(fServerFlags),
		build: func(f *fields) Message { return &AuthOK{ServerFlags: uint16(f.num[fServerFlags])} }},
	TypePublish: {allowed: scope3 | bit(fPayload, fRequestID, fAck), required: scope3 | bit(fPayload),
		build: func(f *fields) Message {
			return &Publish{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Payload: f.payload, RequestID: f.optU64(fRequestID), Ack: f.optAck()}
		}},
	TypePublishBatch: {allowed: scope3 | bit(fPayloads, fRequestID, fAck), required: scope3 | bit(fPayloads),
		build: func(f *fields) Message {
			return &PublishBatch{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Payloads: f.payloads, RequestID: f.optU64(fRequestID), Ack: f.optAck()}
		}},
	TypeSubscribe: {allowed: scope3 | bit(fSubscriptionID, fStart), required: scope3,
		build: func(f *fields) Message {
			m := &Subscribe{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				SubscriptionID: f.optU64(fSubscriptionID)}
			if f.present&^f.null&bit(fStart) != 0 {
				s := f.start
				m.Start = &s
			}
			return m
		}},
	TypeSubscribed: {allowed: bit(fSubscriptionID), required: bit(fSubscriptionID),
		build: func(f *fields) Message { return &Subscribed{SubscriptionID: f.num[fSubscriptionID]} }},
	TypeEventStreamHello: {allowed: bit(fSubscriptionID), required: bit(fSubscriptionID),
		build: func(f *fields) Message { return &EventStreamHello{SubscriptionID: f.num[fSubscriptionID]} }},
	TypeEvent: {allowed: scope3 | bit(fPayload, fOffset), required: scope3 | bit(fPayload),
		build: func(f *fields) Message {
			return &Event{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Payload: f.payload, Offset: f.optU64(fOffset)}
		}},
	TypeEventBatch: {allowed: scope3 | bit(fPayloads, fBaseOffset), required: scope3 | bit(fPayloads),
		build: func(f *fields) Message {
			return &EventBatch{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Payloads: f.payloads, BaseOffset: f.optU64(fBaseOffset)}
		}},
	TypeCachePut: {allowed: cacheScope | bit(fValue, fRequestID, fTTLMs, fIfAbsent, fIfVersion), required: cacheScope | bit(fValue),
		build: func(f *fields) Message {
			return &CachePut{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], Value: f.value, RequestID: f.optU64(fRequestID), TTLMs: f.optU64(fTTLMs),
				IfAbsent: f.flag[fIfAbsent], IfVersion: f.optU64(fIfVersion)}
		}},
	TypeCacheGet: {allowed: cacheScope | bit(fRequestID), required: cacheScope,
		build: func(f *fields) Message {
			return &CacheGet{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], RequestID: f.optU64(fRequestID)}
		}},
	TypeCacheValue: {allowed: cacheScope | bit(fValue, fRequestID, fVersion), required: cacheScope | bit(fValue), nullable: bit(fValue),
		build: func(f *fields) Message {
			m := &CacheValue{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], RequestID: f.optU64(fRequestID), Version: f.optU64(fVersion)}
			if f.null&bit(fValue) == 0 {
				m.Value = f.value
			}
			return m
		}},
	TypeCacheOK: {allowed: bit(fRequestID, fVersion), required: bit(fRequestID),
		build: func(f *fields) Message { return &CacheOK{RequestID: f.num[fRequestID], Version: f.optU64(fVersion)} }},
	TypeCacheDelete: {allowed: cacheScope | bit(fRequestID), required: cacheScope | bit(fRequestID),
		build: func(f *fields) Message {
			return &CacheDelete{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], RequestID: f.num[fRequestID]}
		}},
	TypeCacheDeleted: {allowed: bit(fRequestID, fDeleted), required: bit(fRequestID, fDeleted),
		build: func(f *fields) Message { return &CacheDeleted{RequestID: f.num[fRequestID], Deleted: f.flag[fDeleted]} }},
	TypeCacheTTL: {allowed: cacheScope | bit(fRequestID), required: cacheScope | bit(fRequestID),
		build: func(f *fields) Message {
			return &CacheTTL{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], RequestID: f.num[fRequestID]}
		}},
	TypeCacheTTLValue: {allowed: bit(fRequestID, fFound, fTTLMs), required: bit(fRequestID, fFound, fTTLMs), nullable: bit(fTTLMs),
		build: func(f *fields) Message {
			return &CacheTTLValue{RequestID: f.num[fRequestID], Found: f.flag[fFound], TTLMs: f.optU64(fTTLMs)}
		}},
	TypeCacheMGet: {allowed: bit(fTenantID, fNamespace, fCache, fKeys, fRequestID), required: bit(fTenantID, fNamespace, fCache, fKeys, fRequestID),
		build: func(f *fields) Message {
			return &CacheMGet{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Keys: f.keys, RequestID: f.num[fRequestID]}
		}},
	TypeCacheValues: {allowed: bit(fRequestID, fValues), required: bit(fRequestID, fValues),
		build: func(f *fields) Message { return &CacheValues{RequestID: f.num[fRequestID], Values: f.values} }},
	TypeCacheError: {allowed: bit(fRequestID, fCode, fMessage, fVersion), required: bit(fRequestID, fCode, fMessage),
		build: func(f *fields) Message {
			return &CacheError{RequestID: f.num[fRequestID], Code: f.str[fCode], Message: f.str[fMessage], Version: f.optU64(fVersion)}
		}},
	TypePublishOK: {allowed: bit(fRequestID), required: bit(fRequestID),
		build: func(f *fields) Message { return &PublishOK{RequestID: f.num[fRequestID]} }},
	TypePublishError: {allowed: bit(fRequestID, fMessage), required: bit(fRequestID, fMessage),
		build: func(f *fields) Message {
			return &PublishError{RequestID: f.num[fRequestID], Message: f.str[fMessage]}
		}},
	TypeOK: {build: func(*fields) Message { return &OK{} }},
	TypeError: {allowed: bit(fMessage), required: bit(fMessage),
		build: func(f *fields) Message { return &ErrorMessage{Message: f.str[fMessage]} }},
	TypeSubscribeCursorError: {allowed: bit(fReason, fRequested, fAvailable), required: bit(fReason, fRequested, fAvailable),
		validate: func(f *fields) error {
			if r := f.str[fReason]; r != string(CursorTooOld) && r != string(CursorInFuture) {
				return jsonErr(0, fmt.Sprintf("unknown reason %q", r))
			}
			return nil
		},
		build: func(f *fields) Message {
			return &SubscribeCursorError{Reason: CursorErrorReason(f.str[fReason]),
				Requested: f.num[fRequested], Available: f.num[fAvailable]}
		}},
}

var typePrefix = []byte(`{"type":"`)

// peekType finds the "type" tag: directly when the object starts with it
// (as every encoder writes it), otherwise with a scan of the members.
func peekType(payload []byte) (MsgType, error) {
	if rest, ok := bytes.CutPrefix(payload, typePrefix); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			return MsgType(rest[:i]), nil
		}
	}
	d := decoderPool.Get().(*jsonDecoder)
	defer decoderPool.Put(d)
	d.reset(payload)
	if err := d.expect('{'); err != nil {
		return "", err
	}
	for d.dec.PeekKind() == '"' {
		name, err := d.dec.ReadToken()
		if err != nil {
			return "", d.wrap(err)
		}
		if name.String() != "type" {
			if err := d.dec.SkipValue(); err != nil {
				return "", d.wrap(err)
			}
			continue
		}
		v, err := d.dec.ReadToken()
		if err != nil {
			return "", d.wrap(err)
		}
		if v.Kind() != '"' {
			return "", jsonErr(int(d.dec.InputOffset()), "type must be a string")
		}
		return MsgType(v.String()), nil
	}
	return "", jsonErr(int(d.dec.InputOffset()), `missing field "type"`)
}

type jsonDecoder struct {
	buf    bytes.Buffer
	dec    *jsontext.Decoder
	tmp    []byte
	name   []byte // scratch for unescaped member names
	fields fields // scratch for one decode; built messages copy out of it
}

var decoderPool = sync.Pool{New: func() any {
	d := &jsonDecoder{}
	// Duplicate names are checked by readObject for the fields we know, as
	// serde does (it ignores unknown fields, duplicated or not); jsontext's
	// own tracking of every name would cost more and reject more.
	d.dec = jsontext.NewDecoder(&d.buf, jsontext.AllowDuplicateNames(true))
	return d
}}

func (d *jsonDecoder) reset(payload []byte) {
	d.buf.Reset()
	d.buf.Write(payload)
	d.dec.Reset(&d.buf, jsontext.AllowDuplicateNames(true))
}

func (d *jsonDecoder) wrap(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return jsonErr(int(d.dec.InputOffset()), "unexpected end of input")
	}
	return jsonErr(int(d.dec.InputOffset()), err.Error())
}

func (d *jsonDecoder) expect(kind jsontext.Kind) error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return d.wrap(err)
	}
	if tok.Kind() != kind {
		return jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("expected %v, got %v", kind, tok.Kind()))
	}
	return nil
}

// readObject decodes the top-level object, keeping the allowed fields.
func (d *jsonDecoder) readObject(allowed fieldMask, f *fields) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	types := 0
	for d.dec.PeekKind() == '"' {
		name, err := d.dec.ReadValue()
		if err != nil {
			return d.wrap(err)
		}
		raw, err := d.unquoteName(name)
		if err != nil {
			return err
		}
		id, known := fieldByName(raw, allowed)
		if !known {
			if string(raw) == "type" {
				if types++; types > 1 {
					return jsonErr(int(d.dec.InputOffset()), `duplicate field "type"`)
				}
			}
			if err := d.dec.SkipValue(); err != nil {
				return d.wrap(err)
			}
			continue
		}
		if f.present&(1<<id) != 0 {
			return jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("duplicate field %q", fieldNames[id]))
		}
		if err := d.readField(id, f); err != nil {
			return err
		}
		f.present |= 1 << id
	}
	if err := d.expect('}'); err != nil {
		return err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return jsonErr(int(d.dec.InputOffset()), "trailing data after message")
	}
	return nil
}

// unquoteName returns the bytes of a name without quotes. A name with
// escapes is unescaped first (serde matches field names after unescaping),
// into the decoder's scratch buffer: valid until the next call.
func (d *jsonDecoder) unquoteName(v jsontext.Value) ([]byte, error) {
	if len(v) >= 2 && bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	var err error
	if d.name, err = jsontext.AppendUnquote(d.name[:0], v); err != nil {
		return nil, jsonErr(int(d.dec.InputOffset()), err.Error())
	}
	return d.name, nil
}

func (d *jsonDecoder) readField(id field, f *fields) error {
	if d.dec.PeekKind() == 'n' {
		if _, err := d.dec.ReadToken(); err != nil {
			return d.wrap(err)
		}
		f.null |= 1 << id
		return nil
	}
	switch id {
	case fTenantID, fToken, fNamespace, fStream, fCache, fKey, fMessage, fReason, fCode, fGroup, fConsumer, fPrefix, fScanCursor, fService:
		s, err := d.readString(id)
		if err != nil {
			return err
		}
		f.str[id] = s
	case fClientFlags, fServerFlags:
		v, err := d.readUint(id)
		if err != nil {
			return err
		}
		if v > 0xFFFF {
			return jsonErr(int(d.dec.InputOffset()), fieldNames[id]+" out of range for u16")
		}
		f.num[id] = v
	case fIfAbsent, fDeleted, fFound:
		tok, err := d.dec.ReadToken()
		if err != nil {
			return d.wrap(err)
		}
		if k := tok.Kind(); k != 't' && k != 'f' {
			return jsonErr(int(d.dec.InputOffset()), fieldNames[id]+" must be a boolean")
		}
		f.flag[id] = tok.Bool()
	case fKeys:
		return d.readStringList(f)
	case fValues:
		return d.readNullableBase64List(f)
	case fOffsets:
		return d.readUintList(f)
	case fRequestID, fSubscriptionID, fOffset, fBaseOffset, fTTLMs, fRequested, fAvailable, fIfVersion, fVersion,
		fPrefetch, fDelayMs, fMembers, fInFlight, fPending, fLag, fCursor, fDelivered, fAcked, fNacked,
		fRedelivered, fTimedOut, fDeadLettered, fReleased, fLost, fLimit, fMaxInFlight, fTimeoutMs, fPurged, fRemoved:
		v, err := d.readUint(id)
		if err != nil {
			return err
		}
		f.num[id] = v
	case fDelta, fIntValue, fIntTTLMs:
		v, err := d.readInt(id)
		if err != nil {
			return err
		}
		f.num[id] = uint64(v)
	case fPayload, fValue:
		b, err := d.readBase64(id)
		if err != nil {
			return err
		}
		if id == fPayload {
			f.payload = b
		} else {
			f.value = b
		}
	case fPayloads:
		return d.readBase64List(f)
	case fAck:
		s, err := d.readString(id)
		if err != nil {
			return err
		}
		a, ok := ParseAckMode(s)
		if !ok {
			return jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("unknown ack mode %q", s))
		}
		f.ack = a
	case fStart:
		return d.readStart(f)
	}
	return nil
}

func (d *jsonDecoder) readString(id field) (string, error) {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return "", d.wrap(err)
	}
	if tok.Kind() != '"' {
		return "", jsonErr(int(d.dec.InputOffset()), fieldNames[id]+" must be a string")
	}
	return tok.String(), nil
}

// readUint accepts only a JSON integer literal that fits in a u64.
func (d *jsonDecoder) readUint(id field) (uint64, error) { return d.readUintNamed(fieldNames[id]) }

// readUintNamed is readUint for a member that is not a field of its own
// (a start variant's value); name is for the error.
func (d *jsonDecoder) readUintNamed(name string) (uint64, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return 0, d.wrap(err)
	}
	n, ok := parseUint(v)
	if !ok {
		return 0, jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("%s must be an unsigned integer, got %.32s", name, v))
	}
	return n, nil
}

// readInt accepts only a JSON integer literal that fits in an i64, and
// not -0: JSON allows it, but it is no integer's canonical text (Redis
// refuses "-0" as not an integer, and no encoder writes it). JSON already
// refuses "+1" and leading zeros.
func (d *jsonDecoder) readInt(id field) (int64, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return 0, d.wrap(err)
	}
	neg := len(v) > 0 && v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
	}
	n, ok := parseUint(digits)
	switch {
	case !ok, neg && n == 0:
	case neg && n <= 1<<63:
		return int64(-n), nil // -(1<<63) wraps to itself: math.MinInt64
	case !neg && n < 1<<63:
		return int64(n), nil
	}
	return 0, jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("%s must be a signed 64-bit integer, got %.32s", fieldNames[id], v))
}

func parseUint(v []byte) (uint64, bool) {
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

var strictB64 = base64.StdEncoding.Strict()

// readBase64 decodes a standard padded base64 string into a new slice
// (never nil, so an empty value stays distinct from null).
func (d *jsonDecoder) readBase64(id field) ([]byte, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, d.wrap(err)
	}
	if v.Kind() != '"' {
		return nil, jsonErr(int(d.dec.InputOffset()), fieldNames[id]+" must be a base64 string")
	}
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		d.tmp, err = jsontext.AppendUnquote(d.tmp[:0], v)
		if err != nil {
			return nil, jsonErr(int(d.dec.InputOffset()), err.Error())
		}
		raw = d.tmp
	}
	// Go's decoder skips \r and \n; the reference rejects them.
	if bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 { // IndexByte is vectorized, IndexAny is not
		return nil, jsonErr(int(d.dec.InputOffset()), fieldNames[id]+": invalid base64")
	}
	out := make([]byte, strictB64.DecodedLen(len(raw)))
	n, err := strictB64.Decode(out, raw)
	if err != nil {
		return nil, jsonErr(int(d.dec.InputOffset()), fieldNames[id]+": invalid base64: "+err.Error())
	}
	return out[:n], nil
}

func (d *jsonDecoder) readBase64List(f *fields) error {
	if err := d.expect('['); err != nil {
		return err
	}
	list := [][]byte{}
	for d.dec.PeekKind() != ']' {
		b, err := d.readBase64(fPayloads)
		if err != nil {
			return err
		}
		list = append(list, b)
	}
	if err := d.expect(']'); err != nil {
		return err
	}
	f.payloads = list
	return nil
}

// readStart decodes "latest", "earliest", {"offset":N} or {"time_ms":N}
// (our extension; whether the stream negotiated it is the broker's check).
func (d *jsonDecoder) readStart(f *fields) error {
	switch d.dec.PeekKind() {
	case '"':
		s, err := d.readString(fStart)
		if err != nil {
			return err
		}
		switch s {
		case "latest":
			f.start = StartPosition{Kind: StartLatest}
		case "earliest":
			f.start = StartPosition{Kind: StartEarliest}
		default:
			return jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("unknown start %q", s))
		}
		return nil
	case '{':
		if err := d.expect('{'); err != nil {
			return err
		}
		name, err := d.dec.ReadToken()
		if err != nil {
			return d.wrap(err)
		}
		// serde's map form of an enum: {"offset":N}, and also
		// {"latest":null} / {"earliest":null} for the unit variants.
		variant := name.String() // the token is void after the next read
		switch variant {
		case "offset":
			n, err := d.readUint(fOffset)
			if err != nil {
				return err
			}
			f.start = StartPosition{Kind: StartOffset, Offset: n}
		case "time_ms":
			n, err := d.readUintNamed("start.time_ms")
			if err != nil {
				return err
			}
			f.start = StartPosition{Kind: StartTime, TimeMs: n}
		case "latest", "earliest":
			if err := d.expect('n'); err != nil {
				return err
			}
			f.start = StartPosition{Kind: StartLatest}
			if variant == "earliest" {
				f.start.Kind = StartEarliest
			}
		default:
			return jsonErr(int(d.dec.InputOffset()), fmt.Sprintf("unknown start variant %q", variant))
		}
		return d.expect('}')
	}
	return jsonErr(int(d.dec.InputOffset()), "start must be \"latest\", \"earliest\", {\"offset\":N} or {\"time_ms\":N}")
}

func (d *jsonDecoder) readStringList(f *fields) error {
	if err := d.expect('['); err != nil {
		return err
	}
	list := []string{}
	for d.dec.PeekKind() != ']' {
		s, err := d.readString(fKeys)
		if err != nil {
			return err
		}
		list = append(list, s)
	}
	if err := d.expect(']'); err != nil {
		return err
	}
	f.keys = list
	return nil
}

func (d *jsonDecoder) readNullableBase64List(f *fields) error {
	if err := d.expect('['); err != nil {
		return err
	}
	list := [][]byte{}
	for d.dec.PeekKind() != ']' {
		if d.dec.PeekKind() == 'n' {
			if _, err := d.dec.ReadToken(); err != nil {
				return d.wrap(err)
			}
			list = append(list, nil)
			continue
		}
		b, err := d.readBase64(fValues)
		if err != nil {
			return err
		}
		list = append(list, b)
	}
	if err := d.expect(']'); err != nil {
		return err
	}
	f.values = list
	return nil
}

func (d *jsonDecoder) readUintList(f *fields) error {
	if err := d.expect('['); err != nil {
		return err
	}
	list := []uint64{}
	for d.dec.PeekKind() != ']' {
		n, err := d.readUint(fOffsets)
		if err != nil {
			return err
		}
		list = append(list, n)
	}
	if err := d.expect(']'); err != nil {
		return err
	}
	f.offsets = list
	return nil
}

func (f *fields) optStr(id field) *string {
	if f.present&^f.null&(1<<id) == 0 {
		return nil
	}
	s := f.str[id]
	return &s
}

var queueStatsFields = bit(fRequestID, fMembers, fInFlight, fPending, fLag, fCursor, fDelivered, fAcked, fNacked,
	fRedelivered, fTimedOut, fDeadLettered)

func init() {
	specs[TypeQueueJoin] = msgSpec{allowed: scope3 | bit(fGroup, fConsumer, fPrefetch, fStart), required: scope3 | bit(fGroup),
		build: func(f *fields) Message {
			m := &QueueJoin{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Group: f.str[fGroup], Consumer: f.optStr(fConsumer), Prefetch: f.optU64(fPrefetch)}
			if f.present&^f.null&bit(fStart) != 0 {
				s := f.start
				m.Start = &s
			}
			return m
		}}
	specs[TypeQueueJoined] = msgSpec{allowed: bit(fGroup, fConsumer, fPrefetch), required: bit(fGroup, fConsumer, fPrefetch),
		build: func(f *fields) Message {
			return &QueueJoined{Group: f.str[fGroup], Consumer: f.str[fConsumer], Prefetch: f.num[fPrefetch]}
		}}
	specs[TypeQueueAck] = msgSpec{allowed: bit(fOffsets, fRequestID), required: bit(fOffsets),
		build: func(f *fields) Message { return &QueueAck{Offsets: f.offsets, RequestID: f.optU64(fRequestID)} }}
	specs[TypeQueueLeave] = msgSpec{allowed: bit(fOffsets), required: bit(fOffsets),
		build: func(f *fields) Message { return &QueueLeave{Offsets: f.offsets} }}
	specs[TypeQueueNack] = msgSpec{allowed: bit(fOffset, fDelayMs, fReason, fRequestID), required: bit(fOffset),
		build: func(f *fields) Message {
			return &QueueNack{Offset: f.num[fOffset], DelayMs: f.optU64(fDelayMs), Reason: f.optStr(fReason), RequestID: f.optU64(fRequestID)}
		}}
	specs[TypeQueueOK] = msgSpec{allowed: bit(fRequestID), required: bit(fRequestID),
		build: func(f *fields) Message { return &QueueOK{RequestID: f.num[fRequestID]} }}
	specs[TypeQueueError] = msgSpec{allowed: bit(fRequestID, fCode, fMessage), required: bit(fCode, fMessage),
		build: func(f *fields) Message {
			return &QueueError{RequestID: f.optU64(fRequestID), Code: f.str[fCode], Message: f.str[fMessage]}
		}}
	specs[TypeQueueStats] = msgSpec{allowed: scope3 | bit(fGroup, fRequestID), required: scope3 | bit(fGroup, fRequestID),
		build: func(f *fields) Message {
			return &QueueStats{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Group: f.str[fGroup], RequestID: f.num[fRequestID]}
		}}
	specs[TypeQueueDelete] = msgSpec{allowed: scope3 | bit(fGroup, fRequestID), required: scope3 | bit(fGroup, fRequestID),
		build: func(f *fields) Message {
			return &QueueDelete{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Stream: f.str[fStream],
				Group: f.str[fGroup], RequestID: f.num[fRequestID]}
		}}
	specs[TypeQueueStatsValue] = msgSpec{allowed: queueStatsFields | bit(fReleased, fLost), required: queueStatsFields,
		build: func(f *fields) Message {
			n := &f.num
			return &QueueStatsValue{RequestID: n[fRequestID], Members: n[fMembers], InFlight: n[fInFlight], Pending: n[fPending],
				Lag: n[fLag], Cursor: n[fCursor], Delivered: n[fDelivered], Acked: n[fAcked], Nacked: n[fNacked],
				Redelivered: n[fRedelivered], TimedOut: n[fTimedOut], DeadLettered: n[fDeadLettered],
				Released: f.optU64(fReleased), Lost: f.optU64(fLost)}
		}}
}
