package server

import "github.com/felixmq/felix/wire"

// binCache is a control stream's state for binary cache requests
// (FlagBinaryCache, capability CapCacheBin), reused from one request to the
// next so that a request builds nothing on the heap but its key.
type binCache struct {
	req            wire.CacheBinRequest
	get            wire.CacheGet
	put            wire.CachePut
	id, ttl, ifVer uint64
	// scope is the last request's tenant, namespace and cache, reused while
	// the bytes stay the same (a stream usually talks to one cache).
	scope [3]string
}

// binCache reports whether this stream negotiated binary cache frames.
func (ctl *control) binCache() bool { return ctl.peer&wire.CapCacheBin != 0 }

// binaryCache serves one binary cache request. A malformed body resets the
// stream without a reply, as malformed JSON does. Otherwise the request is
// exactly a JSON cache_get / cache_put carrying a request_id, served by the
// same handlers: same tenant check, authorization, cache lookup, engine call
// and conditions, and the same JSON replies for every failure. Only a
// success is answered in binary (value or miss, ok).
//
// The binary value and ok replies always carry the entry's version, even to
// a peer without CapCacheExt: the layout has no "absent" encoding, and a
// version is information, not a change of semantics.
func (ctl *control) binaryCache(payload []byte) error {
	b := &ctl.bin
	r := &b.req
	if err := wire.DecodeCacheBinRequest(payload, r); err != nil {
		return err
	}
	b.id = r.RequestID
	if string(r.TenantID) != b.scope[0] || string(r.Namespace) != b.scope[1] || string(r.Cache) != b.scope[2] {
		b.scope = [3]string{string(r.TenantID), string(r.Namespace), string(r.Cache)}
	}
	if r.Op == wire.CacheBinGet {
		b.get = wire.CacheGet{TenantID: b.scope[0], Namespace: b.scope[1], Cache: b.scope[2], Key: string(r.Key), RequestID: &b.id}
		return ctl.cacheGet(&b.get, true)
	}
	b.put = wire.CachePut{TenantID: b.scope[0], Namespace: b.scope[1], Cache: b.scope[2], Key: string(r.Key),
		Value: r.Value, RequestID: &b.id, IfAbsent: r.IfAbsent}
	if r.HasTTL {
		b.ttl = r.TTLMs
		b.put.TTLMs = &b.ttl
	}
	if r.HasIfVersion {
		b.ifVer = r.IfVersion
		b.put.IfVersion = &b.ifVer
	}
	return ctl.cachePut(&b.put, true) // the cache copies the value out of the frame
}
