package server_test

import (
	"testing"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// A queue consumer stream takes the rule of every other stream for an
// extension message it did not negotiate (docs/protocol.md §6): an
// unknown message, the stream reset without a reply. A message it did
// negotiate but does not take (queue_ok, a broker's) and a reference
// message other than an ack, nack or leave get "unexpected message type".
// Before, the consumer answered all of them "unexpected message type".
func TestHunt15ConsumerExtensionNotNegotiated(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"))
	c := dialRaw(t, tb)
	for _, m := range []wire.Message{
		&wire.ServiceReply{RequestID: 1}, &wire.CacheFlushed{RequestID: 1}, &wire.CacheDeleted{RequestID: 1},
	} {
		t.Run("reset "+string(m.Type()), func(t *testing.T) {
			s := c.open()
			s.t = t
			joinRaw(t, s, "c-"+string(m.Type()))
			s.lenient = true
			s.sendMsg(m)
			s.expectReset()
		})
	}
	for _, m := range []wire.Message{&wire.QueueOK{RequestID: 1}, &wire.PublishOK{RequestID: 1}} {
		t.Run("refuse "+string(m.Type()), func(t *testing.T) {
			s := c.open()
			s.t = t
			joinRaw(t, s, "c-"+string(m.Type()))
			s.sendMsg(m)
			s.expectJSON(`{"type":"error","message":"unexpected message type"}`)
			s.expectEnd()
		})
	}
}
