package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// A broker shutting down answers the service requests in flight before it
// closes the connections, as it acks the publishes in progress; requests
// that come meanwhile are refused with no_responders (not delivered).
func TestShutdownWaitsForServiceRequests(t *testing.T) {
	tb := testbroker.Start(t)
	resp := serveRaw(t, dialRaw(t, tb), wire.U64(1)) // full with one request
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.sendMsg(req(1, "held", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.Server.Shutdown(ctx) }()
	// A request sent while the broker drains is refused, and its answer
	// also tells that the drain has begun.
	for id := uint64(2); ; id++ {
		rq.sendMsg(req(id, "late", nil))
		m := rq.readMsg()
		e, ok := m.(*wire.RequestError)
		if !ok || e.RequestID != id {
			t.Fatalf("request %d during the drain: %#v", id, m)
		}
		if e.Code == wire.RequestCodeNoResponders && e.Message == "broker shutting down" {
			break
		}
		if e.Code != wire.RequestCodeNoResponders { // before the drain: the responder is full
			t.Fatalf("request %d: %#v", id, e)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) with a request in flight", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	// Without the wait for it, Shutdown would close the connections
	// after its linger (100 ms): the answer comes later than that.
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("answered")})
	rq.expectMsg(&wire.Reply{RequestID: 1, Payload: []byte("answered")})
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
