package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// startClockTB starts a broker whose caches run on clk, which starts at
// the zero time (before the Unix epoch: versions start at 1).
func startClockTB(t *testing.T, clk *testclock.Clock, opts ...testbroker.Option) *testbroker.Broker {
	return testbroker.Start(t, append([]testbroker.Option{testbroker.WithCaches(cache.Config{MaxBytes: 1 << 20}, "t1/default/primary"),
		testbroker.WithCacheStore(cache.StoreOptions{Clock: clk, SweepInterval: -1})}, opts...)...)
}

func expire(id uint64, key string, ttlMs int64) *wire.CacheExpire {
	return &wire.CacheExpire{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, RequestID: id, TTLMs: ttlMs}
}

func put(id uint64, key string, ttlMs *uint64) *wire.CachePut {
	return &wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, Value: []byte("v"), RequestID: wire.U64(id), TTLMs: ttlMs}
}

func ttlOf(id uint64, key string) *wire.CacheTTL {
	return &wire.CacheTTL{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, RequestID: id}
}

// cache_expire byte for byte: it sets an existing key's expiry from now
// and ttl_ms 0 removes it, answering the entry's unchanged version; a
// missing or expired key is not found and not created; a negative ttl_ms
// is refused with code invalid. The stream goes on after each.
func TestCacheExpireWire(t *testing.T) {
	clk := &testclock.Clock{}
	tb := startClockTB(t, clk)
	s := dialRaw(t, tb).open()
	s.authExt()
	s.sendMsg(put(1, "s", nil))
	s.expectJSON(`{"type":"cache_ok","request_id":1,"version":1}`)
	s.sendMsg(expire(2, "s", 5000))
	s.expectJSON(`{"type":"cache_expire_result","request_id":2,"found":true,"version":1}`)
	s.sendMsg(ttlOf(3, "s"))
	s.expectJSON(`{"type":"cache_ttl_value","request_id":3,"found":true,"ttl_ms":5000}`)
	clk.Advance(4 * time.Second)
	s.sendMsg(expire(4, "s", 5000)) // from now
	s.expectJSON(`{"type":"cache_expire_result","request_id":4,"found":true,"version":1}`)
	clk.Advance(4 * time.Second)
	s.sendMsg(ttlOf(5, "s"))
	s.expectJSON(`{"type":"cache_ttl_value","request_id":5,"found":true,"ttl_ms":1000}`)
	s.sendMsg(expire(6, "s", 0)) // persist
	s.expectJSON(`{"type":"cache_expire_result","request_id":6,"found":true,"version":1}`)
	clk.Advance(time.Hour)
	s.sendMsg(ttlOf(7, "s"))
	s.expectJSON(`{"type":"cache_ttl_value","request_id":7,"found":true,"ttl_ms":null}`)
	// The version is unchanged: a compare-and-set on it applies.
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "s", Value: []byte("w"), RequestID: wire.U64(8), IfVersion: wire.U64(1)})
	s.expectJSON(`{"type":"cache_ok","request_id":8,"version":2}`)

	s.sendMsg(expire(9, "missing", 5000))
	s.expectJSON(`{"type":"cache_expire_result","request_id":9,"found":false,"version":0}`)
	s.sendMsg(put(10, "short", wire.U64(1000)))
	s.expectJSON(`{"type":"cache_ok","request_id":10,"version":3}`)
	clk.Advance(time.Second)
	s.sendMsg(expire(11, "short", 0)) // persist does not bring an expired key back
	s.expectJSON(`{"type":"cache_expire_result","request_id":11,"found":false,"version":0}`)
	s.sendMsg(&wire.CacheMGet{TenantID: "t1", Namespace: "default", Cache: "primary", Keys: []string{"missing", "short"}, RequestID: 12})
	s.expectJSON(`{"type":"cache_values","request_id":12,"values":[null,null]}`)

	// Negative: refused (Redis's EXPIRE would delete the key), key intact.
	s.sendMsg(expire(13, "s", -1))
	s.expectJSON(`{"type":"cache_error","request_id":13,"code":"invalid","message":"invalid cache TTL: key \"s\": -1ms is not positive (persist, ttl_ms 0, removes an expiry; delete deletes a key)"}`)
	s.sendMsg(expire(14, "s", -1<<63))
	if m, ok := s.readMsg().(*wire.CacheError); !ok || m.Code != "invalid" || m.RequestID != 14 {
		t.Fatalf("ttl_ms MinInt64: %#v", m)
	}
	s.sendMsg(ttlOf(15, "s"))
	s.expectJSON(`{"type":"cache_ttl_value","request_id":15,"found":true,"ttl_ms":null}`)
	// ttl_ms over 100 years is cut to 100 years, as a put's.
	s.sendMsg(expire(16, "s", 1<<63-1))
	s.expectJSON(`{"type":"cache_expire_result","request_id":16,"found":true,"version":2}`)
	s.sendMsg(ttlOf(17, "s"))
	s.expectJSON(fmt.Sprintf(`{"type":"cache_ttl_value","request_id":17,"found":true,"ttl_ms":%d}`, 100*365*24*time.Hour/time.Millisecond))

	s.sendMsg(&wire.CacheExpire{TenantID: "t1", Namespace: "default", Cache: "other", Key: "k", RequestID: 18, TTLMs: 1})
	s.expectJSON(`{"type":"error","message":"cache scope not found: t1/default/other"}`)
	s.sendMsg(&wire.CacheExpireResult{RequestID: 1, Found: true})
	s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
	s.expectEnd()
}

func scan(id uint64, prefix, cursor string, limit *uint64) *wire.CacheScan {
	return &wire.CacheScan{TenantID: "t1", Namespace: "default", Cache: "primary", RequestID: id, Prefix: prefix, Cursor: cursor, Limit: limit}
}

// cache_scan byte for byte: pages in byte order, the cursor the last key
// until the end, a prefix, expired keys left out, the limit's default
// and cap, and a limit of 0 refused.
func TestCacheScanWire(t *testing.T) {
	clk := &testclock.Clock{}
	tb := startClockTB(t, clk)
	s := dialRaw(t, tb).open()
	s.authExt()
	id := uint64(0)
	for _, k := range []string{"user:2", "b", "user:1", "a", `q"uote`, "c", "gone"} {
		id++
		ttl := (*uint64)(nil)
		if k == "gone" {
			ttl = wire.U64(1000)
		}
		s.sendMsg(put(id, k, ttl))
		s.readMsg()
	}
	clk.Advance(time.Second)
	s.sendMsg(scan(10, "", "", wire.U64(2)))
	s.expectJSON(`{"type":"cache_scan_page","request_id":10,"keys":["a","b"],"cursor":"b"}`)
	s.sendMsg(scan(11, "", "b", wire.U64(2)))
	s.expectJSON(`{"type":"cache_scan_page","request_id":11,"keys":["c","q\"uote"],"cursor":"q\"uote"}`)
	s.sendMsg(scan(12, "", `q"uote`, wire.U64(2)))
	// No key after these (gone expired): the page says the scan is done.
	s.expectJSON(`{"type":"cache_scan_page","request_id":12,"keys":["user:1","user:2"],"cursor":""}`)
	s.sendMsg(scan(13, "", "user:2", wire.U64(2)))
	s.expectJSON(`{"type":"cache_scan_page","request_id":13,"keys":[],"cursor":""}`)
	s.sendMsg(scan(14, "user:", "", nil))
	s.expectJSON(`{"type":"cache_scan_page","request_id":14,"keys":["user:1","user:2"],"cursor":""}`)
	s.sendMsg(scan(15, "nothing", "", nil))
	s.expectJSON(`{"type":"cache_scan_page","request_id":15,"keys":[],"cursor":""}`)
	s.sendMsg(scan(16, "", "", wire.U64(0)))
	s.expectJSON(`{"type":"cache_error","request_id":16,"code":"invalid","message":"cache_scan limit must be at least 1"}`)

	for i := range 1100 {
		s.sendMsg(put(uint64(100+i), fmt.Sprintf("n%04d", i), nil))
		s.readMsg()
	}
	for _, c := range []struct {
		limit *uint64
		want  int
	}{{nil, wire.DefaultScanLimit}, {wire.U64(5000), wire.MaxScanLimit}, {wire.U64(1 << 63), wire.MaxScanLimit}} {
		s.sendMsg(scan(20, "n", "", c.limit))
		p, ok := s.readMsg().(*wire.CacheScanPage)
		if !ok || len(p.Keys) != c.want || p.Cursor != fmt.Sprintf("n%04d", c.want-1) {
			t.Fatalf("limit %v: %d keys, cursor %q; want %d", c.limit, len(p.Keys), p.Cursor, c.want)
		}
	}
	s.sendMsg(&wire.CacheScan{TenantID: "t1", Namespace: "default", Cache: "other", RequestID: 21})
	s.expectJSON(`{"type":"error","message":"cache scope not found: t1/default/other"}`)
	s.sendMsg(&wire.CacheScanPage{RequestID: 1, Keys: []string{}})
	s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
	s.expectEnd()
}

// A page stops early to keep its frame within the broker's frame limit,
// with a cursor that continues the scan to its end; a key too large for
// any page is refused with code too_large, and the stream goes on.
func TestCacheScanFrameLimit(t *testing.T) {
	const limit = 300
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"), smallVersions(),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: limit}))
	s := dialRaw(t, tb).open()
	s.authExt()
	var want []string
	for i := range 60 {
		k := fmt.Sprintf("key-%02d-%s", i, strings.Repeat("\n", i%7)) // escaped: 2 bytes each
		want = append(want, k)
		s.sendMsg(put(uint64(i+1), k, nil))
		s.readMsg()
	}
	var got []string
	cursor, pages := "", 0
	for {
		s.sendMsg(scan(100, "", cursor, wire.U64(1000)))
		f, err := s.r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Payload) > limit {
			t.Fatalf("page of %d bytes over the frame limit %d", len(f.Payload), limit)
		}
		m, err := wire.DecodeMessage(f.Payload)
		p, ok := m.(*wire.CacheScanPage)
		if err != nil || !ok {
			t.Fatalf("page: %v %#v", err, m)
		}
		pages++
		got = append(got, p.Keys...)
		if cursor = p.Cursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) || pages < 5 {
		t.Fatalf("%d pages, %d keys; want every one of %d in order, over several pages", pages, len(got), len(want))
	}
	s.sendMsg(put(200, strings.Repeat("z", 120), nil))
	s.readMsg()
	s.sendMsg(scan(201, "z", "", nil))
	if m, ok := s.readMsg().(*wire.CacheError); !ok || m.Code != "too_large" || m.RequestID != 201 {
		t.Fatalf("a key too large for a page: %#v", m)
	}
	s.sendMsg(scan(202, "key-00", "", nil))
	if m, ok := s.readMsg().(*wire.CacheScanPage); !ok || len(m.Keys) != 1 {
		t.Fatalf("scan after the refusal: %#v", m)
	}
}

// A stream that did not negotiate the cache extension gets a reset for
// either message, as for any unknown message, and nothing changes.
func TestCacheExpireScanNeedExtension(t *testing.T) {
	tb := startCacheTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.authExt()
	s.sendMsg(put(1, "k", nil))
	s.expectJSON(`{"type":"cache_ok","request_id":1,"version":1}`)
	for _, m := range []wire.Message{expire(2, "k", 1), scan(3, "", "", nil)} {
		for _, flags := range []*uint16{wire.U16(wire.KnownFlags), nil} {
			s := c.open()
			s.auth("t1", flags)
			s.sendMsg(m)
			s.expectReset()
		}
		s := c.open() // before auth
		s.sendMsg(m)
		s.expectReset()
	}
	s.sendMsg(ttlOf(4, "k"))
	s.expectJSON(`{"type":"cache_ttl_value","request_id":4,"found":true,"ttl_ms":null}`)
}

// permit authenticates anyone and allows everything but the action denied.
type permit struct{ denied string }

func (p permit) Authenticate(_ context.Context, tenant, _ string) (*server.Identity, error) {
	return &server.Identity{Tenant: tenant, Subject: "limited", Allow: func(action, _ string) bool {
		return action != p.denied
	}}, nil
}

// cache_expire needs the cache write permission, as a put; cache_scan the
// read permission, as a get. Refused: "forbidden", the stream goes on.
func TestCacheExpireScanPermissions(t *testing.T) {
	for _, c := range []struct {
		denied     string
		forbidden  wire.Message
		allowedMsg wire.Message
		allowed    string
	}{
		{server.ActionCacheWrite, expire(1, "k", 1000), scan(2, "", "", nil), `{"type":"cache_scan_page","request_id":2,"keys":[],"cursor":""}`},
		{server.ActionCacheRead, scan(1, "", "", nil), expire(2, "k", 1000), `{"type":"cache_expire_result","request_id":2,"found":false,"version":0}`},
	} {
		tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/primary"), smallVersions(),
			testbroker.WithServerOptions(server.Options{Auth: permit{denied: c.denied}}))
		s := dialRaw(t, tb).open()
		s.authExt()
		s.sendMsg(c.forbidden)
		s.expectJSON(`{"type":"error","message":"forbidden"}`)
		s.sendMsg(c.allowedMsg)
		s.expectJSON(c.allowed)
	}
}

// Below the disk's free-space floor a change of expiry of a durable cache
// is refused as a put is (code storage, the expiry unchanged); an
// in-memory cache's is not, and scans are reads: never refused.
func TestCacheExpireDiskFloor(t *testing.T) {
	tb, full, floor := startDiskFloorTB(t)
	s := dialRaw(t, tb).open()
	s.authExt()
	kept := func(id uint64, ttlMs int64) *wire.CacheExpire {
		return &wire.CacheExpire{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "k", RequestID: id, TTLMs: ttlMs}
	}
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "k", Value: []byte("v"), RequestID: wire.U64(1)})
	s.readMsg()
	s.sendMsg(put(2, "mem", nil))
	s.readMsg()
	full.Store(true)
	s.sendMsg(kept(3, 60000))
	m := s.readMsg()
	ce, ok := m.(*wire.CacheError)
	if !ok || ce.Code != wire.CacheCodeStorage || ce.RequestID != 3 ||
		!strings.HasPrefix(ce.Message, wire.StorageWriteFailed+", cache expire not stored") || !strings.HasSuffix(ce.Message, floor.Error()) {
		t.Fatalf("expire below the floor: %#v", m)
	}
	s.sendMsg(&wire.CacheTTL{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "k", RequestID: 4})
	s.expectJSON(`{"type":"cache_ttl_value","request_id":4,"found":true,"ttl_ms":null}`)
	s.sendMsg(expire(5, "mem", 60000)) // in memory: not guarded
	if m, ok := s.readMsg().(*wire.CacheExpireResult); !ok || !m.Found {
		t.Fatalf("in-memory expire below the floor: %#v", m)
	}
	s.sendMsg(&wire.CacheScan{TenantID: "t1", Namespace: "default", Cache: "kept", RequestID: 6})
	s.expectJSON(`{"type":"cache_scan_page","request_id":6,"keys":["k"],"cursor":""}`)
	full.Store(false)
	s.sendMsg(kept(7, 60000))
	if m, ok := s.readMsg().(*wire.CacheExpireResult); !ok || !m.Found {
		t.Fatalf("expire after room came back: %#v", m)
	}
}
