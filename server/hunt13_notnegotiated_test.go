package server_test

import (
	"testing"

	"github.com/felixmq/felix/wire"
)

// An extension's message on a stream that did not negotiate the extension
// is an unknown message, as the reference would read it: the stream is
// reset without a reply (docs/protocol.md §6), after auth as before it,
// whether the message is one a client sends on a consumer or responder
// stream (queue_ack, service_reply, …) or one only brokers send
// (queue_ok, cache_flushed, …). On a stream that negotiated it, a
// broker-only extension message is "unexpected message type", as any
// broker-only type.
func TestHunt13ExtensionMessageNotNegotiated(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	cases := []struct {
		m   wire.Message
		cap uint16
	}{
		{&wire.QueueAck{Offsets: []uint64{1}}, wire.CapQueue},
		{&wire.QueueNack{Offset: 1}, wire.CapQueue},
		{&wire.QueueLeave{}, wire.CapQueue},
		{&wire.QueueOK{RequestID: 1}, wire.CapQueue},
		{&wire.QueueJoined{Group: "g", Consumer: "c"}, wire.CapQueue},
		{&wire.ServiceReply{RequestID: 1}, wire.CapRequest},
		{&wire.ServiceError{RequestID: 1, Message: "x"}, wire.CapRequest},
		{&wire.Serving{}, wire.CapRequest},
		{&wire.Reply{RequestID: 1}, wire.CapRequest},
		{&wire.RequestError{RequestID: 1, Code: "timeout"}, wire.CapRequest},
		{&wire.CacheDeleted{RequestID: 1}, wire.CapCacheExt},
		{&wire.CacheIncrValue{RequestID: 1}, wire.CapCacheExt},
		{&wire.CacheScanPage{RequestID: 1, Keys: []string{}}, wire.CapCacheExt},
		{&wire.CacheError{RequestID: 1, Code: "invalid"}, wire.CapCacheExt},
		{&wire.CacheError{RequestID: 1, Code: "forbidden"}, wire.CapManage},
		{&wire.StreamPurged{RequestID: 1}, wire.CapManage},
		{&wire.StreamError{RequestID: 1, Code: "invalid"}, wire.CapManage},
		{&wire.CacheFlushed{RequestID: 1}, wire.CapManage},
	}
	for _, tc := range cases {
		t.Run(string(tc.m.Type()), func(t *testing.T) {
			s := c.open()
			s.t = t
			// A reference client: every reference capability, no extension.
			s.auth("t1", wire.U16(wire.KnownFlags))
			s.lenient = true
			s.sendMsg(tc.m)
			s.expectReset()
			// Negotiated, a message the stream does not take.
			s = c.open()
			s.t = t
			flags := wire.KnownFlags | tc.cap
			s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: &flags})
			s.expectMsg(&wire.AuthOK{ServerFlags: flags})
			s.sendMsg(tc.m)
			s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
			s.expectEnd()
		})
	}
}
