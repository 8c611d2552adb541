package server_test

import (
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// An acked publish held by a full block-policy subscriber is stored; when
// its stream is deleted meanwhile it gets an error, and it is not
// published again: with auto-create, a retry would re-create the stream
// and store the events a second time.
func TestHunt15BlockedPublishNotRepublishedAfterDelete(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block, QueueCapacity: 2, AutoCreateStreams: true}))
	sub := dialRaw(t, tb).open()
	sub.auth("t1", nil)
	sub.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
	if m, ok := sub.readMsg().(*wire.Subscribed); !ok {
		t.Fatalf("subscribe: %#v", m)
	}
	// The subscriber never reads: acked publishes go through until its
	// writer is blocked and its queue full, then the next one waits.
	pub := dialRaw(t, tb).open()
	pub.auth("t1", nil)
	payload := make([]byte, 60<<10)
	publish := func(id uint64) {
		pub.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: payload, RequestID: wire.U64(id)})
	}
	var acked uint64
	for i := uint64(0); ; i++ {
		st := tb.Broker.Stats().Streams[0].Subscriptions[0]
		if st.QueueLen == st.QueueCap && st.Delivered*uint64(len(payload)) > transport.DefaultInitialStreamReceiveWindow {
			break
		}
		if i > 2000 {
			t.Fatal("the subscriber's queue never filled")
		}
		publish(i)
		if m, ok := pub.readMsg().(*wire.PublishOK); !ok {
			t.Fatalf("publish %d: %#v", i, m)
		}
		acked++
	}
	publish(1 << 32) // held by the full subscriber
	testwait.Eventually(t, "the held publish stored", func() bool { return tb.Broker.Stats().Streams[0].Tail == acked+1 })
	if err := tb.Broker.DeleteStream("t1", "default", "demo"); err != nil {
		t.Fatal(err)
	}
	if m, ok := pub.readMsg().(*wire.PublishError); !ok {
		t.Fatalf("publish held at the deletion: %#v, want a publish_error", m)
	} else {
		t.Logf("the held publish's answer: %q", m.Message)
	}
	if s, err := tb.Broker.LookupStream("t1", "default", "demo"); err == nil {
		t.Fatalf("the held publish was published again into a re-created stream: %+v", s.Stats())
	}
}
