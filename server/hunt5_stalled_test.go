package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
)

// A subscriber that stops reading costs only its own queue: its drops are
// counted, while an SDK client on another connection, subscribing and
// publishing on the same connection, gets every event in order. Once every
// client has gone, the subscription gauge is back to 0 and both ended
// subscriptions are counted as disconnects.
func TestStalledSubscriberIsolatedAndGaugesReturnToZero(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: 4}))
	stalled := dialRaw(t, tb)
	stalledSubscriber(t, tb, stalled)
	drops := dropped(tb)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS, TenantID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sub, err := cl.Subscribe(ctx, "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if err := cl.Publish(ctx, "default", "demo", []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		// Interleaved: each event is read before the next publish, so the
		// healthy subscription's small queue never fills.
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got := string(ev.Payload); got != fmt.Sprint(i) {
			t.Fatalf("event %d: got %q", i, got)
		}
	}
	if dropped(tb) <= drops {
		t.Fatalf("the stalled subscription dropped nothing more while events were published: %+v", tb.Broker.Stats())
	}

	stalled.cc.Close()
	sub.Close()
	cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	st := tb.Server.Stats()
	for st.Subscriptions.Load() != 0 || st.ConnectionsOpen.Load() != 1 { // the stalled subscriber's publisher is still connected
		if time.Now().After(deadline) {
			t.Fatalf("after the clients left: %d subscriptions, %d connections", st.Subscriptions.Load(), st.ConnectionsOpen.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if n := st.SubscriberResets.Load(); n != 2 {
		t.Errorf("disconnects counted %d, want 2", n)
	}
}
