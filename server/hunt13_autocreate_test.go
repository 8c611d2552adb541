package server_test

import (
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// queue_stats and queue_delete ask about a stream's consumer groups: like
// stream_purge they never create the stream, even under auto-create (a
// typo in a monitoring script must leave nothing behind, as it leaves no
// group). The unknown stream is answered queue_error "invalid" with the
// reference's "stream not found" text. Server.GroupStats (the metrics' and
// dashboard's question) creates none either.
func TestHunt13QueueStatsAndDeleteCreateNoStream(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true}))
	s := dialRaw(t, tb).open()
	flags := wire.U16(wire.KnownFlags | wire.CapQueue)
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: flags})
	s.expectMsg(&wire.AuthOK{ServerFlags: *flags})
	notFound := "stream not found: tenant=t1 namespace=default stream=typo"
	s.sendMsg(&wire.QueueStats{TenantID: "t1", Namespace: "default", Stream: "typo", Group: "g", RequestID: 1})
	s.expectMsg(&wire.QueueError{RequestID: wire.U64(1), Code: "invalid", Message: notFound})
	s.sendMsg(&wire.QueueDelete{TenantID: "t1", Namespace: "default", Stream: "typo", Group: "g", RequestID: 2})
	s.expectMsg(&wire.QueueError{RequestID: wire.U64(2), Code: "invalid", Message: notFound})
	if _, ok := tb.Server.GroupStats("t1", "default", "typo", "g"); ok {
		t.Fatal("GroupStats found a group")
	}
	if _, err := tb.Broker.LookupStream("t1", "default", "typo"); err == nil {
		t.Fatal("queue_stats, queue_delete or GroupStats created stream t1/default/typo")
	}
}
