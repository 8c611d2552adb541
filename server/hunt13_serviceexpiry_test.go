package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// hunt13ServicePerms may serve and request a/ns/svc.
var hunt13ServicePerms = []string{"stream.publish:stream:a/ns/svc", "stream.subscribe:stream:a/ns/svc"}

// expectExpiredReset asserts the broker reset s with code 3 (token
// expired), with no frame before.
func expectExpiredReset(a *testbroker.Attempt, what string, s *rawStream) {
	a.Helper()
	f, err := s.r.ReadFrame()
	if err == nil {
		a.Fatalf("%s: frame %x %s after the expiry, want a reset", what, f.Flags, f.Payload)
	}
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != 3 {
		a.Fatalf("%s after the expiry: %v, want a reset with code 3", what, err)
	}
}

// serviceExpirySetup starts a token broker, makes a responder of a/ns/svc
// and a requester (the responder on a short-lived token when shortResp,
// else the requester), sends request 1 and reads it at the responder. It
// returns the broker, the connection, both streams, a long-lived token
// and the request as the responder got it; the try's set-up ends there.
func serviceExpirySetup(a *testbroker.Attempt, shortResp bool) (tb *testbroker.Broker, c *rawConn, resp, rq *rawStream, long string, sr *wire.ServiceRequest) {
	tb, sg := startTokenBroker(a, auth.Verifier{Leeway: -1}, server.Options{})
	long = issue(a, sg, auth.Claims{Tenant: "a", Subject: "long", Perms: hunt13ServicePerms, ExpiresAt: time.Now().Add(time.Hour)})
	c = dialRaw(a, tb)
	short, exp := shortLived(a, sg, auth.Claims{Tenant: "a", Subject: "short", Perms: hunt13ServicePerms})
	a.SetupBy(exp)
	respTok, rqTok := long, short
	if shortResp {
		respTok, rqTok = short, long
	}
	open := func(tok string) *rawStream {
		s := c.open()
		s.t = a
		if !s.authWith("a", tok) {
			a.Fatal("token refused")
		}
		return s
	}
	resp = open(respTok)
	resp.sendMsg(&wire.Serve{TenantID: "a", Namespace: "ns", Service: "svc"})
	resp.expectMsg(&wire.Serving{})
	rq = open(rqTok)
	rq.sendMsg(&wire.Request{RequestID: 1, TenantID: "a", Namespace: "ns", Service: "svc", Payload: []byte("x"), TimeoutMs: wire.U64(30000)})
	sr, ok := resp.readMsg().(*wire.ServiceRequest)
	if !ok {
		a.Fatal("the responder got no request")
	}
	a.SetupDone()
	return tb, c, resp, rq, long, sr
}

// A responder's rights end with its token: at the expiry its serve
// stream is reset with code 3, the request in flight to it fails at its
// requester with responder_gone, and the service has no responder any
// more (no_responders). The requester, on a token that lives on, is
// unaffected.
func TestHunt13ResponderTokenExpiry(t *testing.T) {
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, _, resp, rq, _, _ := serviceExpirySetup(a, true)
		expectExpiredReset(a, "serve stream", resp)
		rq.s.SetReadDeadline(time.Now().Add(10 * time.Second))
		m := rq.readMsg()
		if e, ok := m.(*wire.RequestError); !ok || e.RequestID != 1 || e.Code != wire.RequestCodeResponderGone {
			a.Fatalf("request in flight at the responder's expiry: %#v, want responder_gone", m)
		}
		rq.sendMsg(&wire.Request{RequestID: 2, TenantID: "a", Namespace: "ns", Service: "svc", Payload: []byte("y")})
		rq.expectMsg(&wire.RequestError{RequestID: 2, Code: wire.RequestCodeNoResponders, Message: "no responders for a/ns/svc"})
		if n := tb.Server.Stats().TokenExpiries.Load(); n != 1 {
			a.Errorf("token expiries counted %d, want 1", n)
		}
	})
}

// A requester's rights end with its token too: at the expiry its request
// stream is reset with code 3 (the request it had in flight, which the
// responder got, has no result there) and the responder's late answer is
// dropped. The responder, on a token that lives on, goes on serving other
// requesters of the same connection.
func TestHunt13RequesterTokenExpiry(t *testing.T) {
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, c, resp, rq, long, sr := serviceExpirySetup(a, false)
		expectExpiredReset(a, "request stream", rq)
		resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("late")})
		rq2 := c.open()
		rq2.t = a
		if !rq2.authWith("a", long) {
			a.Fatal("long token refused")
		}
		rq2.sendMsg(&wire.Request{RequestID: 7, TenantID: "a", Namespace: "ns", Service: "svc", Payload: []byte("y")})
		sr2, ok := resp.readMsg().(*wire.ServiceRequest)
		if !ok || string(sr2.Payload) != "y" {
			a.Fatalf("second request at the responder: %#v", sr2)
		}
		resp.sendMsg(&wire.ServiceReply{RequestID: sr2.RequestID, Payload: []byte("ok")})
		rq2.expectMsg(&wire.Reply{RequestID: 7, Payload: []byte("ok")})
		if n := tb.Server.Stats().TokenExpiries.Load(); n != 1 {
			a.Errorf("token expiries counted %d, want 1", n)
		}
	})
}
