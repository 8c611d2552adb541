package server_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// stallTimeoutMs is the requests' timeout in these tests: far beyond
// what they wait for their results (testwait.Liveness), so a result that
// comes was not a timeout's.
const stallTimeoutMs = 60_000

// overWindow is a payload larger than a client's stream receive window
// (transport.DefaultInitialStreamReceiveWindow, 1 MiB, which grows only
// as the client reads): the broker's write of a request carrying it to a
// responder that does not read blocks on flow control.
var overWindow = strings.Repeat("x", 2<<20)

// expectGone reads n results on rq and fails unless they are
// responder_gone for exactly the request ids want.
func expectGone(t *testing.T, rq *rawStream, want ...uint64) {
	t.Helper()
	var got []uint64
	for range want {
		m := rq.readMsg()
		e, ok := m.(*wire.RequestError)
		if !ok || e.Code != wire.RequestCodeResponderGone {
			t.Fatalf("%#v, want responder_gone", m)
		}
		got = append(got, e.RequestID)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("responder_gone for requests %v, want %v", got, want)
	}
}

// A responder that stops reading its stream without ending it (its
// process hangs: no STOP_SENDING) blocks the broker's write to it on QUIC
// flow control. Once that write has made no progress for
// ResponderStallTimeout the responder is out of service as if the write
// had failed: its requests in flight get responder_gone long before their
// timeouts, the requests after go to the healthy responder, and its
// stream is reset (code 0).
func TestStalledResponderTakenOutOfService(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{ResponderStallTimeout: 100 * time.Millisecond}))
	stalled := serveRaw(t, dialRaw(t, tb), nil)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.s.SetReadDeadline(time.Now().Add(testwait.Liveness))
	rq.sendMsg(req(1, "a", wire.U64(stallTimeoutMs)))
	stalled.readMsg() // and nothing more: its stream stays open
	rq.sendMsg(req(2, overWindow, wire.U64(stallTimeoutMs)))
	healthy := serveRaw(t, dialRaw(t, tb), nil)
	expectGone(t, rq, 1, 2)
	if st := tb.Server.ServiceStats(); st.ResponderGone != 2 || st.Responders != 1 || st.Timeouts != 0 {
		t.Fatalf("stats %+v, want 2 responder_gone and the healthy responder alone serving", st)
	}
	for id := uint64(3); id <= 8; id++ {
		rq.sendMsg(req(id, "p", wire.U64(stallTimeoutMs)))
		sr := healthy.readMsg().(*wire.ServiceRequest)
		healthy.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("ok")})
		rq.expectMsg(&wire.Reply{RequestID: id, Payload: []byte("ok")})
	}
	// Its stream is reset both ways: the client serves again on a new one.
	stalled.s.SetReadDeadline(time.Now().Add(testwait.Liveness))
	var se *quic.StreamError
	if _, err := stalled.r.ReadFrame(); !errors.As(err, &se) || se.ErrorCode != 0 {
		t.Fatalf("the stalled responder's stream: %v, want a reset with code 0", err)
	}
	testwait.Within(t, "the broker stops reading the stalled responder's stream", stalled.s.Context().Done())
}

// A responder that ends its stream (FIN) while the broker's write to it
// is blocked (it stopped reading first) can answer nothing more: its
// requests in flight get responder_gone then, even with no stall bound,
// not once the blocked write ends (the connection's end, or never).
func TestResponderEndedWhileWriteBlockedIsGone(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{ResponderStallTimeout: -1}))
	stalled := serveRaw(t, dialRaw(t, tb), nil)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.s.SetReadDeadline(time.Now().Add(testwait.Liveness))
	rq.sendMsg(req(1, "a", wire.U64(stallTimeoutMs)))
	stalled.readMsg()
	rq.sendMsg(req(2, overWindow, wire.U64(stallTimeoutMs)))
	// Request 2 routed to it: the broker's write of it blocks.
	testwait.Eventually(t, "request 2 routed", func() bool { return tb.Server.ServiceStats().Requests == 2 })
	if err := stalled.s.Close(); err != nil {
		t.Fatal(err)
	}
	expectGone(t, rq, 1, 2)
	if st := tb.Server.ServiceStats(); st.Responders != 0 || st.Timeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A requester that stops reading its results blocks the broker's write
// to its own stream only: the responder's answers to it are still read
// (its stream is not held), and another requester is still answered by
// that responder.
func TestStalledRequesterHoldsUpNoOne(t *testing.T) {
	tb := testbroker.Start(t)
	resp := serveRaw(t, dialRaw(t, tb), nil)
	resp.s.SetReadDeadline(time.Now().Add(testwait.Liveness))
	stalled := dialRaw(t, tb).open()
	authRequest(t, stalled)
	// Replies of 2 MiB each, several times its window: the broker's
	// write of them blocks, the later ones wait behind it.
	for id := uint64(1); id <= 4; id++ {
		stalled.sendMsg(req(id, "a", wire.U64(stallTimeoutMs)))
		sr := resp.readMsg().(*wire.ServiceRequest)
		resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte(overWindow)})
	}
	testwait.Eventually(t, "the answers to the stalled requester read", func() bool { return tb.Server.ServiceStats().Replies == 4 })
	other := dialRaw(t, tb).open()
	authRequest(t, other)
	other.s.SetReadDeadline(time.Now().Add(testwait.Liveness))
	for id := uint64(1); id <= 4; id++ {
		other.sendMsg(req(id, "b", wire.U64(stallTimeoutMs)))
		sr := resp.readMsg().(*wire.ServiceRequest)
		resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("ok")})
		other.expectMsg(&wire.Reply{RequestID: id, Payload: []byte("ok")})
	}
	if st := tb.Server.ServiceStats(); st.Responders != 1 || st.ResponderGone != 0 {
		t.Fatalf("stats %+v", st)
	}
}
