package wire

import "strconv"

// CacheIncr atomically adds Delta to the integer stored under Key and
// answers its new value (extension, CapCacheExt; Redis INCRBY). The value
// is stored as its ASCII decimal text, as Redis stores it; a missing or
// expired key counts as 0. Delta nil means 1 (the field is then omitted).
// TTLMs is the time to live of a key the increment creates, with
// cache_put's meaning (0 expires at once); nil means no expiry. An
// existing key keeps its expiry. Answered by CacheIncrValue or CacheError
// (codes "not_integer", "overflow", "too_large", "storage").
type CacheIncr struct {
	TenantID, Namespace, Cache, Key string
	RequestID                       uint64
	Delta                           *int64
	TTLMs                           *uint64
}

// CacheIncrValue answers CacheIncr: the key's value after the increment
// and the version of the write that stored it.
type CacheIncrValue struct {
	RequestID uint64
	Value     int64
	Version   uint64
}

// The cache_error codes of a refused increment (besides the codes every
// cache write may get).
const (
	// CacheCodeNotInteger: the stored value is not the decimal text of a
	// signed 64-bit integer (Redis: "value is not an integer or out of
	// range"). The entry is unchanged.
	CacheCodeNotInteger = "not_integer"
	// CacheCodeOverflow: the result would not fit in a signed 64-bit
	// integer (Redis: "increment or decrement would overflow"). The entry
	// is unchanged.
	CacheCodeOverflow = "overflow"
)

// I64 returns a pointer to v, for optional fields.
func I64(v int64) *int64 { return &v }

func (*CacheIncr) Type() MsgType      { return TypeCacheIncr }
func (*CacheIncrValue) Type() MsgType { return TypeCacheIncrValue }

func (e *encoder) i64(name string, v int64) {
	e.key(name)
	e.buf = strconv.AppendInt(e.buf, v, 10)
}

func (m *CacheIncr) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	e.u64("request_id", m.RequestID)
	if m.Delta != nil {
		e.i64("delta", *m.Delta)
	}
	e.optU64("ttl_ms", m.TTLMs)
}

func (m *CacheIncrValue) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.i64("value", m.Value)
	e.u64("version", m.Version)
}

func init() {
	specs[TypeCacheIncr] = msgSpec{allowed: cacheScope | bit(fRequestID, fDelta, fTTLMs), required: cacheScope | bit(fRequestID),
		build: func(f *fields) Message {
			return &CacheIncr{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], RequestID: f.num[fRequestID], Delta: f.optI64(fDelta), TTLMs: f.optU64(fTTLMs)}
		}}
	specs[TypeCacheIncrValue] = msgSpec{allowed: bit(fRequestID, fIntValue, fVersion), required: bit(fRequestID, fIntValue, fVersion),
		build: func(f *fields) Message {
			return &CacheIncrValue{RequestID: f.num[fRequestID], Value: int64(f.num[fIntValue]), Version: f.num[fVersion]}
		}}
}
