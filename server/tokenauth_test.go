package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

const allCaps = wire.KnownFlags | wire.ExtensionCaps

// authWith sends an auth frame with every capability and returns whether
// the broker accepted it.
func (s *rawStream) authWith(tenant, token string) bool {
	s.t.Helper()
	s.sendMsg(&wire.Auth{TenantID: tenant, Token: token, ClientFlags: wire.U16(allCaps)})
	f, err := s.r.ReadFrame()
	if err != nil {
		s.t.Fatalf("auth reply: %v", err)
	}
	switch string(f.Payload) {
	case `{"type":"auth_ok","server_flags":` + strconv.FormatUint(uint64(allCaps), 10) + `}`:
		return true
	case `{"type":"error","message":"auth failed"}`:
		s.expectEnd()
		return false
	}
	s.t.Fatalf("unexpected auth reply %s", f.Payload)
	return false
}

// op is one operation on a tenant's resources over one path.
type op struct {
	name string
	// send writes the operation's frame(s) for tenant.
	send func(s *rawStream, tenant string)
}

func ops() []op {
	pl := [][]byte{[]byte("x")}
	return []op{
		{"json publish acked", func(s *rawStream, tn string) {
			s.sendMsg(&wire.Publish{TenantID: tn, Namespace: "ns", Stream: "s", Payload: pl[0], RequestID: wire.U64(1)})
		}},
		{"json publish unacked", func(s *rawStream, tn string) {
			s.sendMsg(&wire.Publish{TenantID: tn, Namespace: "ns", Stream: "s", Payload: pl[0], Ack: wire.Ack(wire.AckNone)})
		}},
		{"json publish_batch acked", func(s *rawStream, tn string) {
			s.sendMsg(&wire.PublishBatch{TenantID: tn, Namespace: "ns", Stream: "s", Payloads: pl, RequestID: wire.U64(1)})
		}},
		{"binary publish acked", func(s *rawStream, tn string) {
			f, _ := wire.AppendAckedPublishBatchFrame(nil, 1, wire.AckPerBatch, tn, "ns", "s", pl)
			s.send(f)
		}},
		{"binary publish unacked", func(s *rawStream, tn string) {
			f, _ := wire.AppendPublishBatchFrame(nil, tn, "ns", "s", pl)
			s.send(f)
		}},
		{"subscribe", func(s *rawStream, tn string) {
			s.sendMsg(&wire.Subscribe{TenantID: tn, Namespace: "ns", Stream: "s"})
		}},
		{"queue join", func(s *rawStream, tn string) {
			s.sendMsg(&wire.QueueJoin{TenantID: tn, Namespace: "ns", Stream: "q", Group: "g"})
		}},
		{"cache put", func(s *rawStream, tn string) {
			s.sendMsg(&wire.CachePut{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", Value: []byte("v"), RequestID: wire.U64(1)})
		}},
		{"cache get", func(s *rawStream, tn string) {
			s.sendMsg(&wire.CacheGet{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", RequestID: wire.U64(1)})
		}},
		{"cache delete", func(s *rawStream, tn string) {
			s.sendMsg(&wire.CacheDelete{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", RequestID: 1})
		}},
		{"cache ttl", func(s *rawStream, tn string) {
			s.sendMsg(&wire.CacheTTL{TenantID: tn, Namespace: "ns", Cache: "c", Key: "k", RequestID: 1})
		}},
		{"cache mget", func(s *rawStream, tn string) {
			s.sendMsg(&wire.CacheMGet{TenantID: tn, Namespace: "ns", Cache: "c", Keys: []string{"k"}, RequestID: 1})
		}},
	}
}

// nothingReached checks that no denied operation left a trace in tenant b.
func nothingReached(t *testing.T, tb *testbroker.Broker, subsAllowed bool) {
	t.Helper()
	st, err := tb.Broker.Stream("b", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Stats().Published; n != 0 {
		t.Fatalf("%d events reached tenant b's stream", n)
	}
	if n := st.Stats().Subscriptions; len(n) != 0 && !subsAllowed {
		t.Fatalf("%d subscriptions on tenant b's stream", len(n))
	}
	c, err := tb.Caches.Get(cache.Scope{Tenant: "b", Namespace: "ns", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("a value reached tenant b's cache")
	}
}

// Tokens that are missing, badly signed, expired, for another audience or
// another tenant are refused with "auth failed" before any operation, on
// every operation type; nothing reaches the broker.
func TestTokenFailuresRefuseEveryOperation(t *testing.T) {
	tb, sg := tokenBroker(t)
	other, _ := auth.GenerateKey()
	c := dialRaw(t, tb)
	full := []string{"tenant.manage:tenant:b"}
	bad := map[string]string{
		"no token":       "",
		"garbage":        "not.a.jwt",
		"bad signature":  issue(t, other, auth.Claims{Tenant: "b", Subject: "mallory", Perms: full}),
		"expired":        issue(t, sg, auth.Claims{Tenant: "b", Subject: "bob", Perms: full, IssuedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(-2 * time.Minute)}),
		"wrong audience": issue(t, sg, auth.Claims{Tenant: "b", Subject: "bob", Perms: full, Audience: "someone-else"}),
		"wrong issuer":   issue(t, sg, auth.Claims{Tenant: "b", Subject: "bob", Perms: full, Issuer: "evil"}),
		"wrong tenant":   issue(t, sg, auth.Claims{Tenant: "a", Subject: "alice", Perms: []string{"tenant.manage:tenant:a"}}),
	}
	for name, tok := range bad {
		for _, o := range ops() {
			t.Run(name+"/"+o.name, func(t *testing.T) {
				s := c.open()
				s.t = t
				// The operation follows the auth frame at once, as a
				// pipelining client would send it.
				s.sendMsg(&wire.Auth{TenantID: "b", Token: tok, ClientFlags: wire.U16(allCaps)})
				s.lenient = true
				o.send(s, "b")
				s.expectJSON(`{"type":"error","message":"auth failed"}`)
				s.expectEnd()
			})
		}
		// A publish-only uni stream with the bad token stores nothing.
		pubUni(t, c, "b", tok)
	}
	nothingReached(t, tb, false)
	if n := tb.Server.Stats().AuthFailures.Load(); n < uint64(len(bad)*len(ops())) {
		t.Fatalf("auth failures counted %d", n)
	}
	// The good token works, on the same connection.
	s := c.open()
	if !s.authWith("b", issue(t, sg, auth.Claims{Tenant: "b", Subject: "bob", Perms: full})) {
		t.Fatal("good token refused")
	}
}

func pubUni(t *testing.T, c *rawConn, tenant, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us, err := c.cc.Conn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: tenant, Token: tok})
	f, _ := wire.AppendPublishBatchFrame(a, tenant, "ns", "s", [][]byte{[]byte("uni")})
	us.Write(f)
	us.Close()
}

// A token of tenant a can neither publish to, subscribe to, consume from
// nor use the cache of tenant b, on any path. The answers are the
// reference's tenant-mismatch behaviour: JSON gets error "tenant mismatch"
// and the stream ends; acked binary gets a "tenant mismatch" ack; unacked
// binary resets the stream.
func TestCrossTenantEveryOperationEveryPath(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	tokA := issue(t, sg, auth.Claims{Tenant: "a", Subject: "alice", Perms: []string{"tenant.manage:tenant:a"}})
	for _, o := range ops() {
		t.Run(o.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			if !s.authWith("a", tokA) {
				t.Fatal("tenant a's token refused for tenant a")
			}
			o.send(s, "b")
			switch o.name {
			case "binary publish acked":
				s.expect(wire.AppendPublishAckFrame(nil, 1, false, "tenant mismatch"))
			case "binary publish unacked":
				s.expectEnd()
			default:
				s.expectJSON(`{"type":"error","message":"tenant mismatch"}`)
				s.expectEnd()
			}
		})
	}
	pubUni(t, c, "b", tokA)
	// The same token sent for tenant b is refused outright.
	s := c.open()
	if s.authWith("b", tokA) {
		t.Fatal("tenant a's token accepted for tenant b")
	}
	// Ordering: a last acked publish on tenant a proves the uni stream was
	// handled before we look.
	s = c.open()
	s.authWith("a", tokA)
	s.sendMsg(&wire.Publish{TenantID: "a", Namespace: "ns", Stream: "s", Payload: []byte("ok"), RequestID: wire.U64(9)})
	s.expectJSON(`{"type":"publish_ok","request_id":9}`)
	nothingReached(t, tb, false)
}

// Within its tenant, a token may do exactly what its permissions say, and
// the answer to a denied operation is "forbidden", the same on JSON and
// binary (see TestForbiddenSameOnJSONAndBinary for the per-path rules).
func TestTokenPermissionsPerOperation(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	// Reader: subscribe and read the cache, nothing else.
	reader := issue(t, sg, auth.Claims{Tenant: "b", Subject: "reader", Perms: []string{
		"stream.subscribe:stream:b/*/*", "cache.read:cache:b/ns/*"}})
	allowed := map[string]bool{"subscribe": true, "cache get": true, "cache ttl": true, "cache mget": true}
	for _, o := range ops() {
		t.Run(o.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			if !s.authWith("b", reader) {
				t.Fatal("reader token refused")
			}
			o.send(s, "b")
			f, err := s.r.ReadFrame()
			if o.name == "json publish unacked" || o.name == "binary publish unacked" {
				if err != nil || string(f.Payload) != `{"type":"error","message":"forbidden"}` {
					t.Fatalf("unacked denied publish: %v %s", err, f.Payload)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			denied := string(f.Payload) == `{"type":"error","message":"forbidden"}` ||
				string(f.Payload) == `{"type":"publish_error","request_id":1,"message":"forbidden"}` ||
				string(wire.AppendFrame(nil, f.Flags, f.Payload)) == string(wire.AppendPublishAckFrame(nil, 1, false, "forbidden"))
			if denied == allowed[o.name] {
				t.Fatalf("%s: allowed=%v but got %s", o.name, allowed[o.name], f.Payload)
			}
		})
	}
	nothingReached(t, tb, true) // the reader may subscribe
	if tb.Server.Denials() == 0 {
		t.Fatal("denials not counted")
	}
}
