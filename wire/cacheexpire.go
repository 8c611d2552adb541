package wire

// CacheExpire sets or removes the expiry of an existing key (extension,
// CapCacheExt; Redis PEXPIRE and PERSIST). TTLMs > 0 makes the key expire
// TTLMs milliseconds from now; 0 removes its expiry. A negative TTLMs is
// decoded (it is a valid i64) but refused by the broker with cache_error
// code "invalid": unlike Redis's EXPIRE, it never deletes the key. A
// missing or expired key is not created. Answered by CacheExpireResult or
// CacheError ("storage", "invalid").
type CacheExpire struct {
	TenantID, Namespace, Cache, Key string
	RequestID                       uint64
	TTLMs                           int64
}

// CacheExpireResult answers CacheExpire: Found is false for a missing or
// expired key (nothing changed). Version is the entry's version, which a
// change of expiry leaves as it was (0 when not found).
type CacheExpireResult struct {
	RequestID uint64
	Found     bool
	Version   uint64
}

func (*CacheExpire) Type() MsgType       { return TypeCacheExpire }
func (*CacheExpireResult) Type() MsgType { return TypeCacheExpireResult }

func (m *CacheExpire) appendFields(e *encoder) {
	e.cacheScope(m.TenantID, m.Namespace, m.Cache, m.Key)
	e.u64("request_id", m.RequestID)
	e.i64("ttl_ms", m.TTLMs)
}

func (m *CacheExpireResult) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.boolean("found", m.Found)
	e.u64("version", m.Version)
}

func init() {
	specs[TypeCacheExpire] = msgSpec{allowed: cacheScope | bit(fRequestID, fIntTTLMs), required: cacheScope | bit(fRequestID, fIntTTLMs),
		build: func(f *fields) Message {
			return &CacheExpire{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				Key: f.str[fKey], RequestID: f.num[fRequestID], TTLMs: int64(f.num[fIntTTLMs])}
		}}
	specs[TypeCacheExpireResult] = msgSpec{allowed: bit(fRequestID, fFound, fVersion), required: bit(fRequestID, fFound, fVersion),
		build: func(f *fields) Message {
			return &CacheExpireResult{RequestID: f.num[fRequestID], Found: f.flag[fFound], Version: f.num[fVersion]}
		}}
}
