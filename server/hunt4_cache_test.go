package server_test

import (
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/wire"
)

// startFakeClockCacheTB starts a broker whose caches run on clk, with
// t1/default/primary declared, and returns a stream that negotiated the
// cache extension.
func startFakeClockCacheTB(t *testing.T, clk *testclock.Clock) (*testbroker.Broker, *rawStream) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"),
		testbroker.WithCacheStore(cache.StoreOptions{Clock: clk, SweepInterval: -1}))
	s := dialRaw(t, tb).open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x", ClientFlags: wire.U16(wire.KnownFlags | wire.CapCacheExt)})
	s.expectJSON(`{"type":"auth_ok","server_flags":16447}`)
	return tb, s
}

// cache_ttl of a live entry never answers ttl_ms 0, which as a put's
// ttl_ms means "expired at once": the remaining time is rounded up to a
// whole millisecond, so a client that copies an entry with the TTL it read
// (GET + PTTL + SET PX) does not drop it, and a found entry's TTL is never
// zero. Before, 0.6 ms left read as ttl_ms 0 with found true.
func TestHunt4CacheTTLRoundsUp(t *testing.T) {
	clk := testclock.New()
	_, s := startFakeClockCacheTB(t, clk)
	put := func(id uint64, key string, ttl *uint64) {
		s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, Value: []byte("v"), TTLMs: ttl, RequestID: wire.U64(id)})
		if m, ok := s.readMsg().(*wire.CacheOK); !ok || m.RequestID != id {
			t.Fatalf("put %d: %#v", id, m)
		}
	}
	ttl := func(id uint64, key string) *wire.CacheTTLValue {
		s.sendMsg(&wire.CacheTTL{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, RequestID: id})
		m, ok := s.readMsg().(*wire.CacheTTLValue)
		if !ok || m.RequestID != id {
			t.Fatalf("ttl %d: %#v", id, m)
		}
		return m
	}
	put(1, "k", wire.U64(1))
	clk.Advance(400 * time.Microsecond)
	if m := ttl(2, "k"); !m.Found || m.TTLMs == nil || *m.TTLMs != 1 {
		t.Fatalf("0.6 ms left: found %v ttl_ms %v, want 1", m.Found, ms(m.TTLMs))
	}
	clk.Advance(600 * time.Microsecond)
	if m := ttl(3, "k"); m.Found || m.TTLMs != nil {
		t.Fatalf("expired: found %v ttl_ms %v", m.Found, ms(m.TTLMs))
	}
	put(4, "k", wire.U64(5000))
	if m := ttl(5, "k"); !m.Found || m.TTLMs == nil || *m.TTLMs != 5000 {
		t.Fatalf("fresh 5 s entry: found %v ttl_ms %v", m.Found, ms(m.TTLMs))
	}
	clk.Advance(1500 * time.Microsecond)
	if m := ttl(6, "k"); !m.Found || m.TTLMs == nil || *m.TTLMs != 4999 {
		t.Fatalf("4998.5 ms left: found %v ttl_ms %v, want 4999", m.Found, ms(m.TTLMs))
	}
	// The largest ttl_ms is clamped (100 years), not overflowed.
	put(7, "k", wire.U64(1<<64-1))
	if m := ttl(8, "k"); !m.Found || m.TTLMs == nil || *m.TTLMs != uint64(100*365*24*time.Hour/time.Millisecond) {
		t.Fatalf("ttl_ms 2^64-1: found %v ttl_ms %v", m.Found, ms(m.TTLMs))
	}
	put(9, "k", nil)
	if m := ttl(10, "k"); !m.Found || m.TTLMs != nil {
		t.Fatalf("no TTL: found %v ttl_ms %v", m.Found, ms(m.TTLMs))
	}
}

func ms(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A request that resolved a cache which is then deleted and created again
// (a capacity change does that) is served by the new cache, not failed
// with "cache deleted": the scope existed when the request arrived and
// exists when it is served. Between the delete and the create, a request
// gets the usual "cache scope not found".
func TestHunt4CacheRecreatedUnderRequests(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"))
	scope := cache.Scope{Tenant: "t1", Namespace: "default", Cache: "primary"}
	s := dialRaw(t, tb).open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x", ClientFlags: wire.U16(wire.KnownFlags | wire.CapCacheExt)})
	s.expectJSON(`{"type":"auth_ok","server_flags":16447}`)
	stop := make(chan struct{})
	done := make(chan int, 1)
	t.Cleanup(func() { // before the broker stops
		close(stop)
		t.Logf("%d re-creations", <-done)
	})
	go func() {
		n := 0
		defer func() { done <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := tb.Caches.Delete(scope); err != nil {
				t.Error(err)
				return
			}
			if _, err := tb.Caches.Create(scope, cache.Config{}); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	const rounds, batch = 20, 500
	var ok, notFound int
	for r := range rounds {
		var buf []byte
		for i := range batch {
			id := uint64(r*batch + i + 1)
			buf, _ = wire.AppendMessageFrame(buf, &wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", Value: []byte("v"), RequestID: &id})
		}
		s.send(buf)
		for range batch {
			switch m := s.readMsg().(type) {
			case *wire.CacheOK:
				ok++
			case *wire.ErrorMessage:
				if m.Message != "cache scope not found: t1/default/primary" {
					t.Fatalf("after %d ok: %q", ok, m.Message)
				}
				notFound++
			case *wire.CacheError:
				t.Fatalf("after %d ok: cache_error %s %q", ok, m.Code, m.Message)
			default:
				t.Fatalf("unexpected %#v", m)
			}
		}
	}
	t.Logf("%d ok, %d not found", ok, notFound)
}
