package server_test

import (
	"fmt"
	"testing"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// Once a responder has read serving it is registered: a request sent
// after that (from another connection, so nothing orders it behind the
// serve but the client) reaches it, never no_responders. (The broker
// wrote serving before it registered the responder, so such a request
// sometimes found nobody serving.) Many services, one request each, to
// meet the race. Behind each request goes one to a service served all
// along: a refusal of the first, written at once, would come before the
// second's reply.
func TestHunt13RequestAfterServingReachesResponder(t *testing.T) {
	tb := testbroker.Start(t)
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	ref := serveRaw(t, dialRaw(t, tb), nil) // default/svc
	rc := dialRaw(t, tb)
	answer := func(resp *rawStream) {
		t.Helper()
		sr, ok := resp.readMsg().(*wire.ServiceRequest)
		if !ok {
			t.Fatal("the responder got no request")
		}
		resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: sr.Payload})
	}
	for i := range uint64(300) {
		name := fmt.Sprintf("svc%d", i)
		resp := rc.open()
		authRequest(t, resp)
		resp.sendMsg(&wire.Serve{TenantID: "t1", Namespace: "default", Service: name})
		resp.expectMsg(&wire.Serving{})
		rq.sendMsg(&wire.Request{RequestID: i, TenantID: "t1", Namespace: "default", Service: name, Payload: []byte("x")})
		rq.sendMsg(req(1000+i, "ref", nil))
		answer(ref)
		if m := rq.readMsg(); !isReply(m, 1000+i) {
			t.Fatalf("service %d: a request sent once serving was read: %#v before the next request's reply", i, m)
		}
		answer(resp)
		if m := rq.readMsg(); !isReply(m, i) {
			t.Fatalf("service %d: %#v, want its reply", i, m)
		}
		resp.s.Close()
		resp.expectEnd()
	}
}

func isReply(m wire.Message, id uint64) bool {
	r, ok := m.(*wire.Reply)
	return ok && r.RequestID == id
}
