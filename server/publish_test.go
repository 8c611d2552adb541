package server_test

import (
	"testing"

	"github.com/felixmq/felix/wire"
)

// Publishes to an unknown stream: an unacked one is dropped and counted in
// UnknownStreamDrop; an acked one is answered with the error, not counted
// as a drop.
func TestUnknownStreamDropsCountOnlyUnacked(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	s.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "nope", Payloads: [][]byte{[]byte("z")}, RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_error","request_id":1,"message":"stream not found: tenant=t1 namespace=default stream=nope"}`)
	unacked, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "nope", [][]byte{[]byte("z")})
	s.send(unacked)
	s.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "nope", Payloads: [][]byte{[]byte("z")}, Ack: wire.Ack(wire.AckNone)})
	s.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "nope", Payloads: [][]byte{[]byte("z")}, RequestID: wire.U64(2)})
	s.expectJSON(`{"type":"publish_error","request_id":2,"message":"stream not found: tenant=t1 namespace=default stream=nope"}`)
	if n := tb.Server.Stats().UnknownStreamDrop.Load(); n != 2 {
		t.Fatalf("unknown-stream drops %d, want 2 (the two unacked publishes)", n)
	}
}
