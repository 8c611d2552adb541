package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// Dead letters go to <stream>.dlq "when it exists" (docs/operations.md):
// the broker does not create it, not even under auto-create, where a
// dead-letter publish would otherwise make an in-memory stream nobody
// declared (its ring soon losing the dead letters, counted as sent, not
// as dropped) in the name of a consumer allowed only queue.consume on the
// stream. Without it the dead letter is dropped and logged.
func TestHunt13DeadLetterStreamNotAutoCreated(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true}),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 2 * time.Millisecond, MaxAttempts: 1}}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(context.Background(), [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	w := dialRaw(t, tb).open()
	joinRaw(t, w, "w1")
	if d := nextDelivery(t, w); d.Offset != 0 {
		t.Fatalf("delivery %+v", d)
	}
	w.sendMsg(&wire.QueueNack{Offset: 0, RequestID: wire.U64(1)}) // its last attempt
	w.expectMsg(&wire.QueueOK{RequestID: 1})
	waitFor(t, "the record dead-lettered", func() bool {
		s, _ := tb.Server.GroupStats("t1", "default", "jobs", "g")
		return s.DeadLettered == 1
	}, nil)
	if _, err := tb.Broker.LookupStream("t1", "default", "jobs.dlq"); err == nil {
		t.Fatal("the dead letter created stream t1/default/jobs.dlq")
	}
}
