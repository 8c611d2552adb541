package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// authExt authenticates s offering the cache extension.
func (s *rawStream) authExt() {
	s.t.Helper()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x", ClientFlags: wire.U16(wire.KnownFlags | wire.CapCacheExt)})
	s.expectJSON(`{"type":"auth_ok","server_flags":16447}`)
}

// expectReset asserts the broker reset the stream, as it does on an
// unknown message.
func (s *rawStream) expectReset() {
	s.t.Helper()
	_, err := s.r.ReadFrame()
	var se *quic.StreamError
	if !errors.As(err, &se) || !se.Remote {
		s.t.Fatalf("stream not reset by the broker: %v", err)
	}
}

func incr(id uint64, key string, delta *int64, ttlMs *uint64) *wire.CacheIncr {
	return &wire.CacheIncr{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, RequestID: id, Delta: delta, TTLMs: ttlMs}
}

// cache_incr byte for byte: the default delta is 1, the value is stored
// as decimal text (a cache_get reads it), a put's value can be
// incremented, and the refusals are cache_error with their codes; the
// stream goes on after each.
func TestCacheIncrWire(t *testing.T) {
	tb := startCacheTB(t)
	s := dialRaw(t, tb).open()
	s.authExt()
	s.sendMsg(incr(1, "n", nil, nil))
	s.expectJSON(`{"type":"cache_incr_value","request_id":1,"value":1,"version":1}`)
	s.sendMsg(incr(2, "n", wire.I64(-5), wire.U64(60000))) // the key exists: ttl_ms does not apply
	s.expectJSON(`{"type":"cache_incr_value","request_id":2,"value":-4,"version":2}`)
	s.sendMsg(&wire.CacheTTL{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "n", RequestID: 3})
	s.expectJSON(`{"type":"cache_ttl_value","request_id":3,"found":true,"ttl_ms":null}`)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "n", RequestID: wire.U64(4)})
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"n","value":"LTQ=","request_id":4,"version":2}`)
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "p", Value: []byte("10"), RequestID: wire.U64(5)})
	s.expectJSON(`{"type":"cache_ok","request_id":5,"version":3}`)
	s.sendMsg(incr(6, "p", wire.I64(5), nil))
	s.expectJSON(`{"type":"cache_incr_value","request_id":6,"value":15,"version":4}`)
	s.sendMsg(incr(7, "created", wire.I64(3), wire.U64(60000)))
	s.expectJSON(`{"type":"cache_incr_value","request_id":7,"value":3,"version":5}`)
	s.sendMsg(&wire.CacheTTL{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "created", RequestID: 8})
	if m, ok := s.readMsg().(*wire.CacheTTLValue); !ok || !m.Found || m.TTLMs == nil || *m.TTLMs > 60000 || *m.TTLMs < 50000 {
		t.Fatalf("ttl of a key incr created with ttl_ms 60000: %#v", m)
	}

	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "name", Value: []byte("felix"), RequestID: wire.U64(9)})
	s.expectJSON(`{"type":"cache_ok","request_id":9,"version":6}`)
	s.sendMsg(incr(10, "name", nil, nil))
	s.expectJSON(`{"type":"cache_error","request_id":10,"code":"not_integer","message":"cache value is not an integer or out of range: key \"name\""}`)
	s.sendMsg(incr(11, "p", wire.I64(1<<63-1), nil))
	s.expectJSON(`{"type":"cache_error","request_id":11,"code":"overflow","message":"cache increment or decrement would overflow: key \"p\" holds 15, delta 9223372036854775807"}`)
	s.sendMsg(&wire.CacheMGet{TenantID: "t1", Namespace: "default", Cache: "primary", Keys: []string{"name", "p"}, RequestID: 12})
	s.expectJSON(`{"type":"cache_values","request_id":12,"values":["ZmVsaXg=","MTU="]}`)
	// Unknown cache: the plain error every cache request gets; the stream goes on.
	s.sendMsg(&wire.CacheIncr{TenantID: "t1", Namespace: "default", Cache: "other", Key: "k", RequestID: 13})
	s.expectJSON(`{"type":"error","message":"cache scope not found: t1/default/other"}`)
	s.sendMsg(incr(14, "n", nil, nil))
	s.expectJSON(`{"type":"cache_incr_value","request_id":14,"value":-3,"version":7}`)
	// Another tenant: closed, as any request.
	s.sendMsg(&wire.CacheIncr{TenantID: "t2", Namespace: "default", Cache: "primary", Key: "k", RequestID: 15})
	s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
	s.expectEnd()
}

// A stream that did not negotiate the cache extension gets what the
// reference broker does with a message it does not know: a reset, with
// nothing stored. Before auth nothing is negotiated: reset too.
func TestCacheIncrNeedsExtension(t *testing.T) {
	tb := startCacheTB(t)
	c := dialRaw(t, tb)
	for _, flags := range []*uint16{wire.U16(wire.KnownFlags), nil} {
		s := c.open()
		s.auth("t1", flags)
		s.sendMsg(incr(1, "n", nil, nil))
		s.expectReset()
	}
	s := c.open()
	s.sendMsg(incr(1, "n", nil, nil))
	s.expectReset()
	// A client sending the reply type: unexpected, as any broker-only type.
	s = c.open()
	s.authExt()
	s.sendMsg(&wire.CacheIncrValue{RequestID: 1, Value: 1, Version: 1})
	s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
	s.expectEnd()
	kv, err := tb.Caches.Get(cache.Scope{Tenant: "t1", Namespace: "default", Cache: "primary"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kv.Get("n"); ok {
		t.Fatal("an increment was stored from a stream without the extension")
	}
}

// denyCacheWrite authenticates anyone and allows everything but writes to
// caches.
type denyCacheWrite struct{}

func (denyCacheWrite) Authenticate(_ context.Context, tenant, _ string) (*server.Identity, error) {
	return &server.Identity{Tenant: tenant, Subject: "reader", Allow: func(action, _ string) bool {
		return action != server.ActionCacheWrite
	}}, nil
}

// An increment needs the cache write permission, as a put: without it the
// answer is "forbidden", nothing is stored and the stream goes on (reads,
// which the identity may do, still work).
func TestCacheIncrNeedsWritePermission(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"), smallVersions(),
		testbroker.WithServerOptions(server.Options{Auth: denyCacheWrite{}}))
	s := dialRaw(t, tb).open()
	s.authExt()
	s.sendMsg(incr(1, "n", nil, nil))
	s.expectJSON(`{"type":"error","message":"forbidden"}`)
	s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "n", RequestID: wire.U64(2)})
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"n","value":null,"request_id":2}`)
}

// Below the disk's free-space floor an increment of a durable cache is
// refused as a put is (code storage, the count unchanged); an in-memory
// cache's is not; once there is room again increments go on.
func TestCacheIncrDiskFloor(t *testing.T) {
	tb, full, floor := startDiskFloorTB(t)
	s := dialRaw(t, tb).open()
	s.authExt()
	kept := func(id uint64) *wire.CacheIncr {
		return &wire.CacheIncr{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "n", RequestID: id}
	}
	s.sendMsg(kept(1))
	if m, ok := s.readMsg().(*wire.CacheIncrValue); !ok || m.Value != 1 {
		t.Fatalf("first increment: %#v", m)
	}
	full.Store(true)
	s.sendMsg(kept(2))
	m := s.readMsg()
	ce, ok := m.(*wire.CacheError)
	if !ok || ce.Code != wire.CacheCodeStorage || ce.RequestID != 2 ||
		!strings.HasPrefix(ce.Message, wire.StorageWriteFailed+", cache incr not stored") || !strings.HasSuffix(ce.Message, floor.Error()) {
		t.Fatalf("increment below the floor: %#v", m)
	}
	s.sendMsg(incr(3, "mem", nil, nil)) // in memory: not guarded
	if m, ok := s.readMsg().(*wire.CacheIncrValue); !ok || m.Value != 1 {
		t.Fatalf("in-memory increment below the floor: %#v", m)
	}
	full.Store(false)
	s.sendMsg(kept(4))
	if m, ok := s.readMsg().(*wire.CacheIncrValue); !ok || m.Value != 2 {
		t.Fatalf("increment after room came back: %#v, want 2 (the refused one not counted)", m)
	}
}

// startDiskFloorTB starts a broker with the in-memory cache t1/default/primary
// and the durable cache t1/default/kept, whose disk is below the
// free-space floor (failing with floor) while full is set.
func startDiskFloorTB(t *testing.T) (tb *testbroker.Broker, full *atomic.Bool, floor error) {
	full = new(atomic.Bool)
	floor = errors.New("free disk space 1.0 MiB is below the broker's limit of 50.0 MiB (--disk-free-limit)")
	tb = testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"), smallVersions(),
		testbroker.WithBrokerOptions(broker.Options{StorageGuard: func() error {
			if full.Load() {
				return floor
			}
			return nil
		}}))
	scope := cache.Scope{Tenant: "t1", Namespace: "default", Cache: "kept"}
	if _, err := tb.Caches.CreateDurable(scope, cache.Config{}, cache.DurableOptions{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return tb, full, floor
}
