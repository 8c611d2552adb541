package server_test

import (
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/wire"
)

// authRequest authenticates s for t1 offering the request capability and
// checks that it is granted.
func authRequest(t *testing.T, s *rawStream) {
	t.Helper()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: wire.U16(wire.KnownFlags | wire.CapRequest)})
	s.expectMsg(&wire.AuthOK{ServerFlags: wire.KnownFlags | wire.CapRequest})
}

// serveRaw makes a new stream of c a responder of default/svc.
func serveRaw(t *testing.T, c *rawConn, maxInFlight *uint64) *rawStream {
	t.Helper()
	s := c.open()
	authRequest(t, s)
	s.sendMsg(&wire.Serve{TenantID: "t1", Namespace: "default", Service: "svc", MaxInFlight: maxInFlight})
	s.expectMsg(&wire.Serving{})
	return s
}

func req(id uint64, payload string, timeoutMs *uint64) *wire.Request {
	return &wire.Request{RequestID: id, TenantID: "t1", Namespace: "default", Service: "svc", Payload: []byte(payload), TimeoutMs: timeoutMs}
}

func TestRequestReplyRaw(t *testing.T) {
	tb := testbroker.Start(t)
	c := dialRaw(t, tb)
	rq := c.open()
	authRequest(t, rq)
	// Nobody serving: no_responders at once.
	rq.sendMsg(req(1, "x", nil))
	rq.expectMsg(&wire.RequestError{RequestID: 1, Code: wire.RequestCodeNoResponders, Message: "no responders for t1/default/svc"})

	resp := serveRaw(t, dialRaw(t, tb), wire.U64(2))
	// Pipelined: three requests, the responder's bound is 2.
	rq.sendMsg(req(10, "a", nil))
	rq.sendMsg(req(11, "b", nil))
	first := resp.readMsg().(*wire.ServiceRequest)
	second := resp.readMsg().(*wire.ServiceRequest)
	if string(first.Payload) != "a" || string(second.Payload) != "b" {
		t.Fatalf("requests %q %q", first.Payload, second.Payload)
	}
	rq.sendMsg(req(12, "c", nil))
	rq.expectMsg(&wire.RequestError{RequestID: 12, Code: wire.RequestCodeNoResponders, Message: "no responders for t1/default/svc"})
	// Answers out of order are matched by id.
	resp.sendMsg(&wire.ServiceError{RequestID: second.RequestID, Message: "no b today"})
	rq.expectMsg(&wire.RequestError{RequestID: 11, Code: wire.RequestCodeResponderError, Message: "no b today"})
	resp.sendMsg(&wire.ServiceReply{RequestID: first.RequestID, Payload: []byte("A")})
	rq.expectMsg(&wire.Reply{RequestID: 10, Payload: []byte("A")})
	// A second answer to the same request is dropped; the stream goes on.
	resp.sendMsg(&wire.ServiceReply{RequestID: first.RequestID, Payload: []byte("again")})
	rq.sendMsg(req(13, "d", nil))
	third := resp.readMsg().(*wire.ServiceRequest)
	resp.sendMsg(&wire.ServiceReply{RequestID: third.RequestID, Payload: []byte("D")})
	rq.expectMsg(&wire.Reply{RequestID: 13, Payload: []byte("D")})
	if st := tb.Server.ServiceStats(); st.Replies != 2 || st.ResponderErrors != 1 || st.UnknownReplies != 1 || st.NoResponders != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Other messages do not belong on a request stream.
	rq.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k"})
	rq.expectEnd()
}

func TestRequestNotNegotiated(t *testing.T) {
	tb := testbroker.Start(t)
	c := dialRaw(t, tb)
	// A reference client: auth_ok shows nothing new.
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	s.sendMsg(req(1, "x", nil))
	s.expectEnd()
	s = c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Serve{TenantID: "t1", Namespace: "default", Service: "svc"})
	s.expectEnd()
	if tb.Server.ServiceStats().Responders != 0 {
		t.Fatal("a responder without the capability")
	}
}

func TestRequestTimeoutAndForbidden(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Auth: denySecret{}}))
	c := dialRaw(t, tb)
	resp := serveRaw(t, c, nil)
	rq := c.open()
	authRequest(t, rq)
	rq.sendMsg(req(1, "slow", wire.U64(1)))
	sr := resp.readMsg().(*wire.ServiceRequest)
	m := rq.readMsg()
	if e, ok := m.(*wire.RequestError); !ok || e.RequestID != 1 || e.Code != wire.RequestCodeTimeout {
		t.Fatalf("want a timeout, got %#v", m)
	}
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("late")})
	// Forbidden: requesting and serving a service named "secret".
	rq.sendMsg(&wire.Request{RequestID: 2, TenantID: "t1", Namespace: "default", Service: "secret", Payload: []byte{}})
	rq.expectMsg(&wire.RequestError{RequestID: 2, Code: wire.RequestCodeForbidden, Message: "forbidden"})
	rq.sendMsg(&wire.Request{RequestID: 3, TenantID: "t2", Namespace: "default", Service: "svc", Payload: []byte{}})
	rq.expectMsg(&wire.RequestError{RequestID: 3, Code: wire.RequestCodeForbidden, Message: "tenant mismatch"})
	rq.sendMsg(&wire.Request{RequestID: 4, TenantID: "t1", Namespace: "default", Service: "a/b", Payload: []byte{}})
	if e, ok := rq.readMsg().(*wire.RequestError); !ok || e.Code != wire.RequestCodeInvalid {
		t.Fatalf("bad name: %#v", e)
	}
	s := c.open()
	authRequest(t, s)
	s.sendMsg(&wire.Serve{TenantID: "t1", Namespace: "default", Service: "secret"})
	s.expectMsg(&wire.ErrorMessage{Message: "forbidden"})
	s.expectEnd()
	waitFor(t, "the late reply counted", func() bool { return tb.Server.ServiceStats().LateReplies == 1 }, nil)
}

func TestResponderGoneRaw(t *testing.T) {
	tb := testbroker.Start(t)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rc := dialRaw(t, tb)
	resp := serveRaw(t, rc, nil)
	rq.sendMsg(req(1, "a", nil))
	rq.sendMsg(req(2, "b", nil))
	resp.readMsg()
	resp.readMsg()
	rc.cc.Close() // the responder's connection ends with both in flight
	for _, id := range []uint64{1, 2} {
		m := rq.readMsg()
		e, ok := m.(*wire.RequestError)
		if !ok || e.Code != wire.RequestCodeResponderGone {
			t.Fatalf("request %d: %#v", id, m)
		}
	}
	waitFor(t, "the responder gone", func() bool { return tb.Server.ServiceStats().Responders == 0 }, nil)
	rq.sendMsg(req(3, "c", nil))
	rq.expectMsg(&wire.RequestError{RequestID: 3, Code: wire.RequestCodeNoResponders, Message: "no responders for t1/default/svc"})
}

// A responder that stops reading its stream (STOP_SENDING) while it
// still writes is out of service once the broker's write to it fails:
// its requests in flight get responder_gone then, not at their (long)
// timeouts, it is sent no more, and the loss is counted.
func TestResponderWriteFailedIsGone(t *testing.T) {
	tb := testbroker.Start(t)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rc := dialRaw(t, tb)
	resp := serveRaw(t, rc, nil)
	rq.sendMsg(req(1, "a", wire.U64(30_000)))
	resp.readMsg()
	resp.s.CancelRead(7) // its send side stays open
	// A round trip on another stream of the connection: the broker has
	// read the STOP_SENDING sent before it.
	authRequest(t, rc.open())
	rq.sendMsg(req(2, "b", wire.U64(30_000))) // its write fails
	for range 2 {
		m := rq.readMsg()
		if e, ok := m.(*wire.RequestError); !ok || e.Code != wire.RequestCodeResponderGone {
			t.Fatalf("%#v, want responder_gone", m)
		}
	}
	if st := tb.Server.ServiceStats(); st.ResponderGone != 2 || st.Responders != 0 || st.Timeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
	rq.sendMsg(req(3, "c", wire.U64(30_000)))
	rq.expectMsg(&wire.RequestError{RequestID: 3, Code: wire.RequestCodeNoResponders, Message: "no responders for t1/default/svc"})
	// Its stream ends: the broker stops reading it too.
	select {
	case <-resp.s.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the broker still reads the responder's stream")
	}
}

func TestRequestLimitPerConnection(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Services: service.Options{MaxPending: 3}}))
	resp := serveRaw(t, dialRaw(t, tb), nil)
	c := dialRaw(t, tb)
	a, b := c.open(), c.open()
	authRequest(t, a)
	authRequest(t, b)
	a.sendMsg(req(1, "", nil))
	a.sendMsg(req(2, "", nil))
	b.sendMsg(req(1, "", nil))
	for range 3 {
		resp.readMsg()
	}
	// The connection's fourth pending request, on either stream.
	b.sendMsg(req(2, "", nil))
	b.expectMsg(&wire.RequestError{RequestID: 2, Code: wire.RequestCodeLimit, Message: "too many requests pending on this connection (3)"})
	// Another connection has its own bound.
	o := dialRaw(t, tb).open()
	authRequest(t, o)
	o.sendMsg(req(1, "x", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("ok")})
	o.expectMsg(&wire.Reply{RequestID: 1, Payload: []byte("ok")})
	if st := tb.Server.ServiceStats(); st.Limited != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A reply that does not fit the requester's frame limit is refused as
// too_large (the responder's frame fits; the reply's request id is
// longer).
func TestReplyTooLarge(t *testing.T) {
	const limit = 1000
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{MaxFrameBytes: limit}))
	resp := serveRaw(t, dialRaw(t, tb), nil)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.sendMsg(req(^uint64(0), "x", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)
	// The largest payload whose service_reply fits the limit.
	p := make([]byte, 0, limit)
	for {
		b, _ := wire.EncodeMessage(&wire.ServiceReply{RequestID: sr.RequestID, Payload: append(p, 'x')})
		if len(b) > limit {
			break
		}
		p = append(p, 'x')
	}
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: p})
	m := rq.readMsg()
	if e, ok := m.(*wire.RequestError); !ok || e.Code != wire.RequestCodeTooLarge || e.RequestID != ^uint64(0) {
		t.Fatalf("%#v", m)
	}
}
