package server_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/wire"
)

// A responder's service_error that fits the broker's frame limit can make
// a request_error that does not (it adds a code): the requester must
// still get an answer under its own request id, not one it cannot match
// (it would wait for its timeout, or for ever).
func TestOversizedResponderErrorKeepsRequestID(t *testing.T) {
	const limit = 1024
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{MaxFrameBytes: limit}))
	resp := serveRaw(t, dialRaw(t, tb), nil)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.sendMsg(req(7, "x", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)
	// The longest message whose service_error the broker still reads.
	msg := strings.Repeat("m", limit)
	for {
		b, _ := wire.AppendMessageFrame(nil, &wire.ServiceError{RequestID: sr.RequestID, Message: msg})
		if len(b)-wire.HeaderSize <= limit {
			break
		}
		msg = msg[1:]
	}
	resp.sendMsg(&wire.ServiceError{RequestID: sr.RequestID, Message: msg})
	m := rq.readMsg()
	e, ok := m.(*wire.RequestError)
	if !ok || e.RequestID != 7 {
		t.Fatalf("want a request_error for request 7, got %#v", m)
	}
	// The stream goes on.
	rq.sendMsg(req(8, "y", nil))
	sr = resp.readMsg().(*wire.ServiceRequest)
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("Y")})
	rq.expectMsg(&wire.Reply{RequestID: 8, Payload: []byte("Y")})
}

// A requester may end its send side (FIN) after its last request, as a
// one-shot client does: the broker still owes each request read before
// its answer, and must write them before it ends its own side.
func TestRequestStreamFinishedStillAnswered(t *testing.T) {
	tb := testbroker.Start(t)
	resp := serveRaw(t, dialRaw(t, tb), nil)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.sendMsg(req(1, "a", nil))
	rq.sendMsg(req(2, "b", nil))
	if err := rq.s.Close(); err != nil { // FIN: no more requests
		t.Fatal(err)
	}
	first := resp.readMsg().(*wire.ServiceRequest)
	second := resp.readMsg().(*wire.ServiceRequest)
	resp.sendMsg(&wire.ServiceReply{RequestID: second.RequestID, Payload: []byte("B")})
	rq.expectMsg(&wire.Reply{RequestID: 2, Payload: []byte("B")})
	resp.sendMsg(&wire.ServiceError{RequestID: first.RequestID, Message: "no"})
	rq.expectMsg(&wire.RequestError{RequestID: 1, Code: wire.RequestCodeResponderError, Message: "no"})
	if _, err := rq.r.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the answers: %v, want the stream's clean end", err)
	}
}

// Timed-out requests give their places in the connection's bound back
// by the time their results reach the requester: request after request
// sent once the previous one's timeout came never meets the limit.
func TestRequestTimeoutsReleasePending(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Services: service.Options{MaxPending: 1, MaxInFlight: 1000}}))
	resp := serveRaw(t, dialRaw(t, tb), wire.U64(1000)) // never answers
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	for id := range uint64(200) {
		rq.sendMsg(req(id, "x", wire.U64(1)))
		m := rq.readMsg()
		if e, ok := m.(*wire.RequestError); !ok || e.Code != wire.RequestCodeTimeout {
			t.Fatalf("request %d: %#v, want a timeout", id, m)
		}
		resp.readMsg()
	}
}

// A requester stream reset in the middle of a frame ends that stream
// only: the result of its request in flight is dropped, its place in the
// connection's bound given back, and another request stream of the same
// connection goes on.
func TestRequestStreamResetMidFrame(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Services: service.Options{MaxPending: 1}}))
	resp := serveRaw(t, dialRaw(t, tb), nil)
	c := dialRaw(t, tb)
	a := c.open()
	authRequest(t, a)
	a.sendMsg(req(1, "a", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)
	half, _ := wire.AppendMessageFrame(nil, req(2, "b", nil))
	a.send(half[:len(half)/2])
	a.s.CancelWrite(7)
	if m, err := a.r.ReadFrame(); err == nil {
		t.Fatalf("the reset stream goes on: %#v", m)
	}
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("A")})
	b := c.open()
	authRequest(t, b)
	// Until the reply to the reset stream's request is dropped, its place
	// is taken: limit; then a request is accepted (and times out).
	for id := uint64(10); ; id++ {
		b.sendMsg(req(id, "c", wire.U64(1)))
		m := b.readMsg()
		e, ok := m.(*wire.RequestError)
		if ok && e.Code == wire.RequestCodeLimit && id < 10000 {
			time.Sleep(time.Millisecond)
			continue
		}
		if !ok || e.Code != wire.RequestCodeTimeout {
			t.Fatalf("request on the other stream: %#v", m)
		}
		break
	}
}
