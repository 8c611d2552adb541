package server_test

import (
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

func startCacheTB(t *testing.T) *testbroker.Broker {
	return testbroker.Start(t, testbroker.WithCaches(cache.Config{MaxBytes: 1 << 20}, "t1/default/primary"), smallVersions())
}

// smallVersions runs the caches on a clock that reads before the Unix
// epoch, so their versions start at 1 (not at the clock in microseconds)
// and the byte-exact replies below can spell them. The clock moves in
// real time, so TTLs behave as with the system clock.
func smallVersions() testbroker.Option {
	return testbroker.WithCacheStore(cache.StoreOptions{Clock: preEpochClock{start: time.Now()}})
}

type preEpochClock struct{ start time.Time }

func (c preEpochClock) Now() time.Time {
	return time.Unix(0, 0).Add(-24 * time.Hour).Add(time.Since(c.start))
}

// The reference's cache flows, byte for byte: a client that knows nothing
// of our extensions sees exactly the reference broker's replies.
func TestConformanceCacheReference(t *testing.T) {
	tb := startCacheTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	// The reference's cache_put vector, with a request id added.
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "demo-key", Value: []byte("cached"), TTLMs: wire.U64(60000), RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"cache_ok","request_id":1}`)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "demo-key", RequestID: wire.U64(2)})
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"demo-key","value":"Y2FjaGVk","request_id":2}`)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "nope", RequestID: wire.U64(3)})
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"nope","value":null,"request_id":3}`)
	// ttl_ms 0: expired at once.
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "gone", Value: []byte("x"), TTLMs: wire.U64(0), RequestID: wire.U64(4)})
	s.expectJSON(`{"type":"cache_ok","request_id":4}`)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "gone", RequestID: wire.U64(5)})
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"gone","value":null,"request_id":5}`)
	// Unknown scope with a request id: error, and the stream goes on.
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "other", Key: "k", RequestID: wire.U64(6)})
	s.expectJSON(`{"type":"error","message":"cache scope not found: t1/default/other"}`)
	// Extension messages are unknown to a client that did not negotiate them.
	s.sendMsg(&wire.CacheDelete{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "demo-key", RequestID: 7})
	s.expectEnd()

	// Without a request id (the reference's vectors): reply, then close.
	s = c.open()
	s.auth("t1", nil)
	s.send(mustHexT(t, "464c5831000100000000007f7b2274797065223a2263616368655f707574222c2274656e616e745f6964223a227431222c226e616d657370616365223a2264656661756c74222c226361636865223a227072696d617279222c226b6579223a2264656d6f2d6b6579222c2276616c7565223a225932466a6147566b222c2274746c5f6d73223a313030307d"))
	s.expectJSON(`{"type":"ok"}`)
	s.expectEnd()
	s = c.open()
	s.auth("t1", nil)
	s.send(mustHexT(t, "464c5831000100000000005e7b2274797065223a2263616368655f676574222c2274656e616e745f6964223a227431222c226e616d657370616365223a2264656661756c74222c226361636865223a227072696d617279222c226b6579223a2264656d6f2d6b6579227d"))
	// The reference's cache_value vector, exactly.
	s.expect(mustHexT(t, "464c583100010000000000737b2274797065223a2263616368655f76616c7565222c2274656e616e745f6964223a227431222c226e616d657370616365223a2264656661756c74222c226361636865223a227072696d617279222c226b6579223a2264656d6f2d6b6579222c2276616c7565223a225932466a6147566b227d"))
	s.expectEnd()
	s = c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "other", Key: "k"})
	s.expectJSON(`{"type":"error","message":"cache scope not found: t1/default/other"}`)
	s.expectEnd()
	s = c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.CacheGet{TenantID: "t2", Namespace: "default", Cache: "primary", Key: "k", RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
	s.expectEnd()
}

func TestCacheExtensions(t *testing.T) {
	tb := startCacheTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x", ClientFlags: wire.U16(wire.KnownFlags | wire.CapCacheExt)})
	s.expectJSON(`{"type":"auth_ok","server_flags":16447}`) // 0x403F: known flags + the cache extension
	put := func(id uint64, key, val string, mod func(*wire.CachePut)) {
		m := &wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, Value: []byte(val), RequestID: wire.U64(id)}
		if mod != nil {
			mod(m)
		}
		s.sendMsg(m)
	}
	put(1, "k", "v1", nil)
	s.expectJSON(`{"type":"cache_ok","request_id":1,"version":1}`)
	put(2, "k", "v2", func(m *wire.CachePut) { m.IfAbsent = true })
	s.expectJSON(`{"type":"cache_error","request_id":2,"code":"condition_failed","message":"cache condition failed: key \"k\" is at version 1","version":1}`)
	put(3, "k", "v3", func(m *wire.CachePut) { m.IfVersion = wire.U64(1) })
	s.expectJSON(`{"type":"cache_ok","request_id":3,"version":2}`)
	put(4, "k", "v4", func(m *wire.CachePut) { m.IfVersion = wire.U64(1) })
	s.expectJSON(`{"type":"cache_error","request_id":4,"code":"condition_failed","message":"cache condition failed: key \"k\" is at version 2","version":2}`)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", RequestID: wire.U64(5)})
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"k","value":"djM=","request_id":5,"version":2}`)
	s.sendMsg(&wire.CacheTTL{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", RequestID: 6})
	s.expectJSON(`{"type":"cache_ttl_value","request_id":6,"found":true,"ttl_ms":null}`)
	s.sendMsg(&wire.CacheMGet{TenantID: "t1", Namespace: "default", Cache: "primary", Keys: []string{"k", "missing"}, RequestID: 7})
	s.expectJSON(`{"type":"cache_values","request_id":7,"values":["djM=",null]}`)
	s.sendMsg(&wire.CacheDelete{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", RequestID: 8})
	s.expectJSON(`{"type":"cache_deleted","request_id":8,"deleted":true}`)
	s.sendMsg(&wire.CacheDelete{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", RequestID: 9})
	s.expectJSON(`{"type":"cache_deleted","request_id":9,"deleted":false}`)
	put(10, "big", string(make([]byte, 2<<20)), nil) // over the 1 MiB capacity
	s.expectJSON(`{"type":"cache_error","request_id":10,"code":"too_large","message":"cache entry too large: 2097251 bytes exceeds capacity 1048576"}`)
}

// Auto-created caches are bounded (Options.MaxAutoCreatedCaches): past the
// bound a new name is refused with a clear error and the stream goes on;
// existing caches, declared or auto-created, keep working.
func TestAutoCreatedCachesBounded(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"),
		testbroker.WithServerOptions(server.Options{AutoCreateCaches: true, MaxAutoCreatedCaches: 2}))
	s := dialRaw(t, tb).open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	put := func(name string, id uint64) {
		s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: name, Key: "k", Value: []byte("v"), RequestID: wire.U64(id)})
	}
	put("auto1", 1) // the second cache: created
	s.expectJSON(`{"type":"cache_ok","request_id":1}`)
	put("auto2", 2) // would be the third
	s.expectMsg(&wire.ErrorMessage{Message: "too many caches to auto-create another (2; --auto-create-max-caches): t1/default/auto2"})
	put("auto1", 3)
	s.expectJSON(`{"type":"cache_ok","request_id":3}`)
	put("primary", 4)
	s.expectJSON(`{"type":"cache_ok","request_id":4}`)
}
