package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/wire"
)

// hunt13Ext is one extension request naming tenant tn, and the bytes of
// its frame.
type hunt13Ext struct {
	name  string
	frame func(t *testing.T, tn string) []byte
}

func hunt13Frame(t *testing.T, m wire.Message) []byte {
	t.Helper()
	b, err := wire.AppendMessageFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hunt13Exts are the requests of every extension (cache 0x4000, binary
// cache 0x1000, queue 0x2000, start by time 0x0400, management 0x0100,
// services 0x0200) on ns/s (streams), ns/q (durable stream, group g) and
// ns/c (cache), each with request id 1 where it has one.
func hunt13Exts() []hunt13Ext {
	msg := func(name string, m func(tn string) wire.Message) hunt13Ext {
		return hunt13Ext{name, func(t *testing.T, tn string) []byte { return hunt13Frame(t, m(tn)) }}
	}
	return []hunt13Ext{
		msg("cache_incr", func(tn string) wire.Message {
			return &wire.CacheIncr{TenantID: tn, Namespace: "ns", Cache: "c", Key: "n", RequestID: 1}
		}),
		msg("cache_expire", func(tn string) wire.Message {
			return &wire.CacheExpire{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", RequestID: 1, TTLMs: 1}
		}),
		msg("cache_scan", func(tn string) wire.Message {
			return &wire.CacheScan{TenantID: tn, Namespace: "ns", Cache: "c", RequestID: 1}
		}),
		msg("cache_delete", func(tn string) wire.Message {
			return &wire.CacheDelete{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", RequestID: 1}
		}),
		{"binary cache get", func(t *testing.T, tn string) []byte {
			b, err := wire.AppendCacheBinGetFrame(nil, 1, tn, "ns", "c", "k")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"binary cache put", func(t *testing.T, tn string) []byte {
			b, err := wire.AppendCacheBinPutFrame(nil, 1, &wire.CachePut{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", Value: []byte("evil")})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		msg("queue_stats", func(tn string) wire.Message {
			return &wire.QueueStats{TenantID: tn, Namespace: "ns", Stream: "q", Group: "g", RequestID: 1}
		}),
		msg("queue_delete", func(tn string) wire.Message {
			return &wire.QueueDelete{TenantID: tn, Namespace: "ns", Stream: "q", Group: "g", RequestID: 1}
		}),
		msg("queue_join with start", func(tn string) wire.Message {
			return &wire.QueueJoin{TenantID: tn, Namespace: "ns", Stream: "q", Group: "g2",
				Start: &wire.StartPosition{Kind: wire.StartLatest}}
		}),
		msg("subscribe from a time", func(tn string) wire.Message {
			return &wire.Subscribe{TenantID: tn, Namespace: "ns", Stream: "s",
				Start: &wire.StartPosition{Kind: wire.StartTime, TimeMs: 1}}
		}),
		msg("stream_purge", func(tn string) wire.Message {
			return &wire.StreamPurge{TenantID: tn, Namespace: "ns", Stream: "s", RequestID: 1}
		}),
		msg("cache_flush", func(tn string) wire.Message {
			return &wire.CacheFlush{TenantID: tn, Namespace: "ns", Cache: "c", RequestID: 1}
		}),
		msg("serve", func(tn string) wire.Message {
			return &wire.Serve{TenantID: tn, Namespace: "ns", Service: "s"}
		}),
	}
}

// hunt13State puts tenant b's state in place: key k in b/ns/c, two
// events in b/ns/s and b/ns/q, and group g on b/ns/q.
func hunt13State(t *testing.T, c *rawConn, sg *auth.Signer) {
	t.Helper()
	s := c.open()
	if !s.authWith("b", issue(t, sg, auth.Claims{Tenant: "b", Subject: "bob", Perms: []string{"tenant.manage:tenant:b"}})) {
		t.Fatal("b's token refused")
	}
	s.sendMsg(&wire.CachePut{TenantID: "b", Namespace: "ns", Cache: "c", Key: "k", Value: []byte("v"), RequestID: wire.U64(1)})
	if _, ok := s.readMsg().(*wire.CacheOK); !ok {
		t.Fatal("b's put refused")
	}
	for i, st := range []string{"s", "s", "q", "q"} {
		s.sendMsg(&wire.Publish{TenantID: "b", Namespace: "ns", Stream: st, Payload: []byte("e"), RequestID: wire.U64(uint64(10 + i))})
		if _, ok := s.readMsg().(*wire.PublishOK); !ok {
			t.Fatal("b's publish refused")
		}
	}
	s.sendMsg(&wire.QueueJoin{TenantID: "b", Namespace: "ns", Stream: "q", Group: "g"})
	if _, ok := s.readMsg().(*wire.QueueJoined); !ok {
		t.Fatal("b's join refused")
	}
	s.s.Close() // leaves the group, which stays
}

// A token of tenant a (allowed everything in a) naming tenant b in any
// extension request: every one is refused with tenant mismatch and the
// stream ends, as for the reference's requests; a service request is
// answered request_error forbidden "tenant mismatch" and its stream goes
// on. Nothing of b's changes: its cache keeps its entry, its streams their
// events, its group exists, and nobody serves b's service.
func TestHunt13CrossTenantExtensionRequests(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	hunt13State(t, c, sg)
	tokA := issue(t, sg, auth.Claims{Tenant: "a", Subject: "alice", Perms: []string{"*:*"}})
	for _, o := range hunt13Exts() {
		t.Run(o.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			if !s.authWith("a", tokA) {
				t.Fatal("a's token refused")
			}
			s.lenient = true
			s.send(o.frame(t, "b"))
			s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
			s.expectEnd()
		})
	}
	t.Run("request", func(t *testing.T) {
		s := c.open()
		s.t = t
		if !s.authWith("a", tokA) {
			t.Fatal("a's token refused")
		}
		s.sendMsg(&wire.Request{RequestID: 1, TenantID: "b", Namespace: "ns", Service: "s", Payload: []byte("x")})
		s.expectMsg(&wire.RequestError{RequestID: 1, Code: wire.RequestCodeForbidden, Message: "tenant mismatch"})
		s.sendMsg(&wire.Request{RequestID: 2, TenantID: "a", Namespace: "ns", Service: "s", Payload: []byte("x")})
		s.expectMsg(&wire.RequestError{RequestID: 2, Code: wire.RequestCodeNoResponders, Message: "no responders for a/ns/s"})
	})
	bc, err := tb.Caches.Get(cache.Scope{Tenant: "b", Namespace: "ns", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := bc.Get("k"); !ok || string(v) != "v" {
		t.Fatalf("b's entry k is %q (%v), want v", v, ok)
	}
	if _, ok := bc.Get("n"); ok {
		t.Fatal("a's incr reached b's cache")
	}
	if _, hasTTL, _ := bc.TTL("k"); hasTTL {
		t.Fatal("a's cache_expire reached b's entry")
	}
	for _, name := range []string{"s", "q"} {
		st, err := tb.Broker.Stream("b", "ns", name)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Stats(); got.Published != 2 || got.Purged != 0 || len(got.Subscriptions) != 0 {
			t.Fatalf("b/ns/%s after a's requests: published %d, purged %d, %d subscriptions", name, got.Published, got.Purged, len(got.Subscriptions))
		}
	}
	if _, ok := tb.Server.GroupStats("b", "ns", "q", "g"); !ok {
		t.Fatal("b's group g is gone")
	}
	if _, ok := tb.Server.GroupStats("b", "ns", "q", "g2"); ok {
		t.Fatal("a's join created group g2 on b's stream")
	}
	if n := tb.Server.ServiceStats().Responders; n != 0 {
		t.Fatalf("%d responders after a's serve on b", n)
	}
}

// Requests allowed and refused by permissions, pipelined in one write on
// one control stream: each gets its own answer, in request order, whatever
// its encoding (JSON, binary cache, binary publish); a refusal with a
// request id leaves the stream going, and the uncorrelated one (serve)
// ends it after every earlier answer. Nothing refused takes effect.
func TestHunt13PipelinedAllowedAndForbidden(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	ac, err := tb.Caches.Get(cache.Scope{Tenant: "a", Namespace: "ns", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := ac.Put("k", []byte("v"), cache.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, sg, auth.Claims{Tenant: "a", Subject: "reader", Perms: []string{
		"cache.read:cache:a/ns/c", "stream.publish:stream:a/ns/s"}})
	s := c.open()
	if !s.authWith("a", tok) {
		t.Fatal("token refused")
	}
	forbidden := `{"type":"error","message":"forbidden"}`
	binPub, err := wire.AppendAckedPublishBatchFrame(nil, 13, wire.AckPerBatch, "a", "ns", "s", [][]byte{[]byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	binPut, err := wire.AppendCacheBinPutFrame(nil, 5, &wire.CachePut{TenantID: "a", Namespace: "ns", Cache: "c", Key: "k", Value: []byte("w")})
	if err != nil {
		t.Fatal(err)
	}
	binGet, err := wire.AppendCacheBinGetFrame(nil, 6, "a", "ns", "c", "k")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		frame []byte
		want  []byte // the reply's frame
	}{
		{hunt13Frame(t, &wire.CacheGet{TenantID: "a", Namespace: "ns", Cache: "c", Key: "k", RequestID: wire.U64(1)}),
			hunt13Frame(t, &wire.CacheValue{TenantID: "a", Namespace: "ns", Cache: "c", Key: "k", Value: []byte("v"), RequestID: wire.U64(1), Version: wire.U64(ver)})},
		{hunt13Frame(t, &wire.CacheIncr{TenantID: "a", Namespace: "ns", Cache: "c", Key: "n", RequestID: 2}), wire.AppendFrame(nil, 0, []byte(forbidden))},
		{hunt13Frame(t, &wire.Publish{TenantID: "a", Namespace: "ns", Stream: "s", Payload: []byte("j"), RequestID: wire.U64(3)}),
			hunt13Frame(t, &wire.PublishOK{RequestID: 3})},
		{hunt13Frame(t, &wire.CacheExpire{TenantID: "a", Namespace: "ns", Cache: "c", Key: "k", RequestID: 4, TTLMs: 1}), wire.AppendFrame(nil, 0, []byte(forbidden))},
		{binPut, wire.AppendFrame(nil, 0, []byte(forbidden))},
		{binGet, wire.AppendCacheBinValueFrame(nil, 6, ver, []byte("v"))},
		{hunt13Frame(t, &wire.QueueStats{TenantID: "a", Namespace: "ns", Stream: "q", Group: "g", RequestID: 7}),
			hunt13Frame(t, &wire.QueueError{RequestID: wire.U64(7), Code: "forbidden", Message: "forbidden"})},
		{hunt13Frame(t, &wire.QueueDelete{TenantID: "a", Namespace: "ns", Stream: "q", Group: "g", RequestID: 8}),
			hunt13Frame(t, &wire.QueueError{RequestID: wire.U64(8), Code: "forbidden", Message: "forbidden"})},
		{hunt13Frame(t, &wire.StreamPurge{TenantID: "a", Namespace: "ns", Stream: "s", RequestID: 9}),
			hunt13Frame(t, &wire.StreamError{RequestID: 9, Code: wire.StreamCodeForbidden, Message: "forbidden"})},
		{hunt13Frame(t, &wire.CacheFlush{TenantID: "a", Namespace: "ns", Cache: "c", RequestID: 10}),
			hunt13Frame(t, &wire.CacheError{RequestID: 10, Code: wire.StreamCodeForbidden, Message: "forbidden"})},
		{hunt13Frame(t, &wire.CacheScan{TenantID: "a", Namespace: "ns", Cache: "c", RequestID: 11}),
			hunt13Frame(t, &wire.CacheScanPage{RequestID: 11, Keys: []string{"k"}})},
		{hunt13Frame(t, &wire.CacheDelete{TenantID: "a", Namespace: "ns", Cache: "c", Key: "k", RequestID: 12}), wire.AppendFrame(nil, 0, []byte(forbidden))},
		{binPub, wire.AppendPublishAckFrame(nil, 13, true, "")},
		{hunt13Frame(t, &wire.Publish{TenantID: "a", Namespace: "ns", Stream: "q", Payload: []byte("j"), RequestID: wire.U64(14)}),
			hunt13Frame(t, &wire.PublishError{RequestID: 14, Message: "forbidden"})},
		{hunt13Frame(t, &wire.Serve{TenantID: "a", Namespace: "ns", Service: "s"}), wire.AppendFrame(nil, 0, []byte(forbidden))},
	}
	var all []byte
	for _, st := range steps {
		all = append(all, st.frame...)
	}
	s.send(all)
	s.r.AllowFlags(wire.FlagBinaryCache)
	for _, st := range steps {
		s.expect(st.want)
	}
	s.expectEnd()
	if v, ok := ac.Get("k"); !ok || string(v) != "v" {
		t.Fatalf("a's entry k is %q (%v) after refused writes", v, ok)
	}
	if _, ok := ac.Get("n"); ok {
		t.Fatal("a refused incr stored n")
	}
	st, err := tb.Broker.Stream("a", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Stats(); got.Published != 2 || got.Purged != 0 {
		t.Fatalf("a/ns/s: published %d, purged %d; want 2, 0", got.Published, got.Purged)
	}
	if n := tb.Server.Denials(); n != 10 {
		t.Fatalf("%d denials counted, want 10", n)
	}
}

// Extension requests that come before a successful auth are never
// served: pipelined behind an auth whose token is refused (expired, for
// another tenant, badly signed) they get nothing but "auth failed" and the
// stream ends; sent with no auth at all, an extension message is unknown
// (nothing is negotiated yet) and resets the stream, a subscribe (a
// reference message, whatever its start) gets "auth required", and a binary cache
// frame is a frame with unknown flags ("unsupported frame flags"), which
// serves nothing either. Tenant b's state is untouched throughout.
func TestHunt13ExtensionRequestsBeforeAuth(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	hunt13State(t, c, sg)
	other, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"tenant.manage:tenant:b"}
	bad := map[string]string{
		"expired": issue(t, sg, auth.Claims{Tenant: "b", Subject: "bob", Perms: all,
			IssuedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(-2 * time.Minute)}),
		"other tenant":  issue(t, sg, auth.Claims{Tenant: "a", Subject: "alice", Perms: []string{"*:*"}}),
		"bad signature": issue(t, other, auth.Claims{Tenant: "b", Subject: "mallory", Perms: all}),
	}
	exts := append(hunt13Exts(), hunt13Ext{"request", func(t *testing.T, tn string) []byte {
		return hunt13Frame(t, &wire.Request{RequestID: 1, TenantID: tn, Namespace: "ns", Service: "s", Payload: []byte("x")})
	}})
	for name, tok := range bad {
		for _, o := range exts {
			t.Run(name+"/"+o.name, func(t *testing.T) {
				s := c.open()
				s.t = t
				s.lenient = true
				a := hunt13Frame(t, &wire.Auth{TenantID: "b", Token: tok, ClientFlags: wire.U16(allCaps)})
				s.send(append(a, o.frame(t, "b")...))
				s.expectJSON(`{"type":"error","message":"auth failed"}`)
				s.expectEnd()
			})
		}
	}
	for _, o := range exts {
		t.Run("no auth/"+o.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			s.lenient = true
			s.send(o.frame(t, "b"))
			switch {
			case strings.HasPrefix(o.name, "binary cache"):
				s.expectJSON(`{"type":"error","message":"unsupported frame flags"}`)
				s.s.Close()
				s.expectEnd()
			case strings.HasPrefix(o.name, "subscribe"): // a reference message
				s.expectJSON(`{"type":"error","message":"auth required"}`)
				s.expectEnd()
			default:
				s.expectReset()
			}
		})
	}
	bc, err := tb.Caches.Get(cache.Scope{Tenant: "b", Namespace: "ns", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := bc.Get("k"); !ok || string(v) != "v" {
		t.Fatalf("b's entry k is %q (%v), want v", v, ok)
	}
	st, err := tb.Broker.Stream("b", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Stats(); got.Published != 2 || got.Purged != 0 {
		t.Fatalf("b/ns/s: published %d, purged %d; want 2, 0", got.Published, got.Purged)
	}
	if _, ok := tb.Server.GroupStats("b", "ns", "q", "g"); !ok {
		t.Fatal("b's group g is gone")
	}
	if n := tb.Server.ServiceStats(); n.Responders != 0 || n.Requests != 0 {
		t.Fatalf("services after refused requests: %+v", n)
	}
}

// A refusal that ends the stream (an unacked publish the token may not
// make) in the middle of a pipeline: the requests before it are answered,
// in order, then its error "forbidden"; the allowed requests pipelined
// after it are not served.
func TestHunt13PipelineEndsAtUncorrelatedDenial(t *testing.T) {
	tb, sg := tokenBroker(t)
	tok := issue(t, sg, auth.Claims{Tenant: "a", Subject: "writer", Perms: []string{
		"cache.*:cache:a/ns/c", "stream.publish:stream:a/ns/s"}})
	s := dialRaw(t, tb).open()
	if !s.authWith("a", tok) {
		t.Fatal("token refused")
	}
	var all []byte
	for _, m := range []wire.Message{
		&wire.CachePut{TenantID: "a", Namespace: "ns", Cache: "c", Key: "before", Value: []byte("1"), RequestID: wire.U64(1)},
		&wire.Publish{TenantID: "a", Namespace: "ns", Stream: "s", Payload: []byte("p"), RequestID: wire.U64(2)},
		&wire.Publish{TenantID: "a", Namespace: "ns", Stream: "q", Payload: []byte("denied"), Ack: wire.Ack(wire.AckNone)},
		&wire.CachePut{TenantID: "a", Namespace: "ns", Cache: "c", Key: "after", Value: []byte("2"), RequestID: wire.U64(3)},
		&wire.Publish{TenantID: "a", Namespace: "ns", Stream: "s", Payload: []byte("after"), RequestID: wire.U64(4)},
	} {
		all = append(all, hunt13Frame(t, m)...)
	}
	s.lenient = true
	s.send(all)
	if _, ok := s.readMsg().(*wire.CacheOK); !ok {
		t.Fatal("the first put was not answered first")
	}
	s.expectMsg(&wire.PublishOK{RequestID: 2})
	s.expectJSON(`{"type":"error","message":"forbidden"}`)
	s.expectEnd()
	ac, err := tb.Caches.Get(cache.Scope{Tenant: "a", Namespace: "ns", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ac.Get("before"); !ok {
		t.Fatal("the put before the denial is missing")
	}
	if _, ok := ac.Get("after"); ok {
		t.Fatal("a put pipelined after the closing denial was served")
	}
	for name, want := range map[string]uint64{"s": 1, "q": 0} {
		st, err := tb.Broker.Stream("a", "ns", name)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.Stats().Published; n != want {
			t.Fatalf("a/ns/%s holds %d events, want %d", name, n, want)
		}
	}
}
