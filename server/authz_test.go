package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// denySecret authenticates anyone and allows everything except resources
// whose name ends in "secret".
type denySecret struct{}

func (denySecret) Authenticate(_ context.Context, tenant, _ string) (*server.Identity, error) {
	return &server.Identity{Tenant: tenant, Subject: "alice", Allow: func(_, resource string) bool {
		return !strings.HasSuffix(resource, "secret")
	}}, nil
}

// A denied operation gets the same answer whatever its encoding: a
// correlated request (JSON or binary, with a request id) is answered
// "forbidden" and the stream goes on; an uncorrelated one gets error
// "forbidden" and the stream ends. Nothing denied is stored.
func TestForbiddenSameOnJSONAndBinary(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo", "t1/default/secret"),
		testbroker.WithCaches(cache.Config{}, "t1/default/secret"),
		testbroker.WithServerOptions(server.Options{Auth: denySecret{}}))
	c := dialRaw(t, tb)
	ok := func(s *rawStream, id uint64) {
		t.Helper()
		s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("ok"), RequestID: wire.U64(id)})
		s.expectJSON(`{"type":"publish_ok","request_id":` + strconv.FormatUint(id, 10) + `}`)
	}
	cases := []struct {
		name string
		run  func(s *rawStream)
	}{
		{"json acked publish", func(s *rawStream) {
			s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "secret", Payload: []byte("x"), RequestID: wire.U64(1)})
			s.expectJSON(`{"type":"publish_error","request_id":1,"message":"forbidden"}`)
			ok(s, 2)
		}},
		{"binary acked publish", func(s *rawStream) {
			f, _ := wire.AppendAckedPublishBatchFrame(nil, 1, wire.AckPerBatch, "t1", "default", "secret", [][]byte{[]byte("x")})
			s.send(f)
			s.expect(wire.AppendPublishAckFrame(nil, 1, false, "forbidden"))
			ok(s, 2)
		}},
		{"json unacked publish", func(s *rawStream) {
			s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "secret", Payload: []byte("x"), Ack: wire.Ack(wire.AckNone)})
			s.expectJSON(`{"type":"error","message":"forbidden"}`)
			s.expectEnd()
		}},
		{"binary unacked publish", func(s *rawStream) {
			f, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "secret", [][]byte{[]byte("x")})
			s.send(f)
			s.expectJSON(`{"type":"error","message":"forbidden"}`)
			s.expectEnd()
		}},
		{"subscribe", func(s *rawStream) {
			s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "secret"})
			s.expectJSON(`{"type":"error","message":"forbidden"}`)
			s.expectEnd()
		}},
		{"cache get with request id", func(s *rawStream) {
			s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "secret", Key: "k", RequestID: wire.U64(1)})
			s.expectJSON(`{"type":"error","message":"forbidden"}`)
			ok(s, 2)
		}},
		{"cache put without request id", func(s *rawStream) {
			s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "secret", Key: "k", Value: []byte("v")})
			s.expectJSON(`{"type":"error","message":"forbidden"}`)
			s.expectEnd()
		}},
		{"queue join", func(s *rawStream) {
			s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "secret", Group: "g"})
			s.expectJSON(`{"type":"error","message":"forbidden"}`)
			s.expectEnd()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.open()
			s.t = t
			s.sendMsg(&wire.Auth{TenantID: "t1", Token: "any", ClientFlags: wire.U16(wire.KnownFlags | wire.ExtensionCaps)})
			s.expectJSON(`{"type":"auth_ok","server_flags":` + strconv.FormatUint(uint64(wire.KnownFlags|wire.ExtensionCaps), 10) + `}`)
			tc.run(s)
		})
	}
	st, err := tb.Broker.Stream("t1", "default", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Stats().Published; n != 0 {
		t.Fatalf("%d denied events stored", n)
	}
	if n := tb.Server.Denials(); n != uint64(len(cases)) {
		t.Fatalf("denials counted %d, want %d", n, len(cases))
	}
}
