package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// stalledSubscriber subscribes on c to t1/default/demo and never reads its
// event stream, then publishes (from another connection) until the
// subscription's writer is blocked on flow control: it took more than the
// client's stream window (transport.DefaultInitialStreamReceiveWindow,
// which grows only as the client reads) and its queue is full. A drain
// cannot finish then before its budget ends.
func stalledSubscriber(t *testing.T, tb *testbroker.Broker, c *rawConn) {
	t.Helper()
	s := c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
	if m, ok := s.readMsg().(*wire.Subscribed); !ok {
		t.Fatalf("subscribe: %#v", m)
	}
	pub := dialRaw(t, tb).open()
	pub.auth("t1", nil)
	payload := make([]byte, 60<<10)
	for i := 0; ; i++ {
		f, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", [][]byte{payload})
		pub.send(f)
		if i%16 == 15 {
			// An acked publish orders the check after the unacked ones.
			pub.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(uint64(i))})
			if m, ok := pub.readMsg().(*wire.PublishOK); !ok {
				t.Fatalf("publish: %#v", m)
			}
			if st := tb.Broker.Stats().Streams[0].Subscriptions[0]; st.QueueLen == st.QueueCap &&
				st.Delivered*uint64(len(payload)) > transport.DefaultInitialStreamReceiveWindow {
				return
			}
		}
		if i > 10000 {
			t.Fatal("the stalled subscription's writer never blocked")
		}
	}
}

func dropped(tb *testbroker.Broker) uint64 {
	var n uint64
	for _, st := range tb.Broker.Stats().Streams {
		for _, sub := range st.Subscriptions {
			n += sub.Dropped
		}
	}
	return n
}

// waitDraining returns once a new stream on c is refused as the broker
// drains (reset with code 2).
func waitDraining(t *testing.T, c *rawConn) {
	t.Helper()
	for range 1000 {
		s := c.open()
		s.lenient = true
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev"})
		_, err := s.r.ReadFrame()
		var se *quic.StreamError
		if errors.As(err, &se) && se.ErrorCode == quic.StreamErrorCode(wire.ResetClosing) {
			return
		}
		s.s.CancelRead(0)
		s.s.Close()
	}
	t.Fatal("the broker never refused a stream as draining")
}

// A second Shutdown while the first is still draining does not return
// before the server has stopped: when its context ends it cuts the drain
// short (closes the connections at once), as a second signal does for the
// process, and the first Shutdown returns as well.
func TestSecondShutdownStopsTheServer(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: 4}))
	c := dialRaw(t, tb)
	stalledSubscriber(t, tb, c)

	first := make(chan error, 1)
	ctx1, cancel1 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel1()
	go func() { first <- tb.Server.Shutdown(ctx1) }()
	waitDraining(t, c)

	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2() // no budget: stop now
	err := tb.Server.Shutdown(ctx2)
	if st := tb.Server.Stats(); st.ConnectionsOpen.Load() != 0 || st.Subscriptions.Load() != 0 {
		t.Fatalf("second Shutdown returned (%v) with %d connections and %d subscriptions still served",
			err, st.ConnectionsOpen.Load(), st.Subscriptions.Load())
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("second Shutdown cut the drain short: got %v, want its context's error", err)
	}
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("first Shutdown: %v", err)
		}
	case <-ctx1.Done():
		t.Fatal("first Shutdown still draining after the second stopped the server")
	}
}
