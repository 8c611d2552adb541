package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// A requester that does not read its results cannot make the broker hold
// more of them than the connection's bound (service.Options.MaxPending):
// results in a stream write that cannot complete (the requester's flow
// control window is full) keep their places until the write is done, so
// one request more is refused, not accepted with its result held beside
// the bound. Once the requester reads, everything goes on: the request
// that met the bound is served, no deadlock. Before, the writer gave the
// places of the batch it was writing back before the write, and the
// broker accepted (and held the results of) another batch per blocked
// stream. Refusals are counted per request refused: the request that
// waited for its stream's write and was then served is not one (it was
// counted when first tried, and would have been again had the second try
// been refused).
func TestHunt15BlockedRequesterHoldsNoMoreThanTheBound(t *testing.T) {
	const bound = 2
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Services: service.Options{MaxPending: bound}}))
	resp := serveRaw(t, dialRaw(t, tb), nil)
	// The requester's window (16 KiB) is smaller than one result (20 KiB):
	// no result's write completes until the requester reads.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cc, err := transport.Dial(ctx, tb.Addr, tb.ClientTLS, transport.Options{InitialStreamReceiveWindow: 16 << 10, MaxStreamReceiveWindow: 16 << 10},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	rq := (&rawConn{t: t, cc: cc}).open()
	authRequest(t, rq)
	payload := bytes.Repeat([]byte{'r'}, 20<<10)
	for id := range uint64(bound) {
		rq.sendMsg(req(id, "x", nil))
		sr := resp.readMsg().(*wire.ServiceRequest)
		resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: payload})
	}
	// The first result's frame header arrives: the broker's writer has
	// taken it and is blocked writing it.
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(rq.s, hdr[:]); err != nil {
		t.Fatal(err)
	}
	rq.sendMsg(req(bound, "over", nil))
	// Another stream of the connection meets the bound too: its request
	// is refused at once (no result of its own is being written), while
	// "over" waits for the blocked write of its stream, which does not
	// hold up the other stream.
	other := (&rawConn{t: t, cc: cc}).open()
	authRequest(t, other)
	other.sendMsg(req(7, "refused", nil))
	other.expectMsg(&wire.RequestError{RequestID: 7, Code: wire.RequestCodeLimit, Message: "too many requests pending on this connection (2)"})
	if st := tb.Server.ServiceStats(); st.Requests != bound {
		t.Fatalf("%d requests accepted by a requester that reads none of its %d results: the bound is %d", st.Requests, bound, bound)
	}
	// The requester reads: the writes complete, their places come back,
	// and the request that met the bound goes to the responder.
	r := wire.NewReader(io.MultiReader(bytes.NewReader(hdr[:]), rq.s), 0)
	for id := range uint64(bound) {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		m, err := wire.DecodeMessage(f.Payload)
		if rp, ok := m.(*wire.Reply); err != nil || !ok || rp.RequestID != id || len(rp.Payload) != len(payload) {
			t.Fatalf("result %d: %#v %v", id, m, err)
		}
	}
	sr := resp.readMsg().(*wire.ServiceRequest)
	if string(sr.Payload) != "over" {
		t.Fatalf("responder got %q", sr.Payload)
	}
	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("ok")})
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := wire.DecodeMessage(f.Payload); err != nil {
		t.Fatal(err)
	} else if rp, ok := m.(*wire.Reply); !ok || rp.RequestID != bound || string(rp.Payload) != "ok" {
		t.Fatalf("the request that met the bound: %#v", m)
	}
	// felix_service_limited_total counts requests refused, once each:
	// the other stream's, not "over", which waited and was served.
	if st := tb.Server.ServiceStats(); st.Limited != 1 {
		t.Fatalf("Limited %d, want 1: only the other stream's request was refused", st.Limited)
	}
}
