package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// subscribeWhenFree subscribes to stream on c, retrying while the slot of
// a subscription that just ended is not yet given back (it is given back
// right after its event stream ends, which the client may see first).
func subscribeWhenFree(t *testing.T, c *rawConn, stream string) uint64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := c.subscribeRaw(t, stream, nil)
		if s, ok := m.(*wire.Subscribed); ok {
			return s.SubscriptionID
		}
		if e, ok := m.(*wire.ErrorMessage); !ok || !strings.Contains(e.Message, "limit exceeded") && !strings.Contains(e.Message, "max subscriptions") {
			t.Fatalf("subscribe %s: %#v", stream, m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription slot never given back: %#v", m)
		}
		time.Sleep(time.Millisecond)
	}
}

// With one subscription allowed per connection and per tenant, every way a
// subscription is refused or ends gives its slot back: refused after auth
// (unknown stream, forbidden, cursor out of range), its stream deleted,
// the client stopping its event stream; and once the client is gone the
// gauges are back to 0.
func TestSubscriptionSlotsGivenBackOnEveryPath(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo", "t1/default/gone", "t1/default/secret"),
		testbroker.WithServerOptions(server.Options{Auth: denySecret{}, MaxSubscriptionsPerConn: 1,
			Limits: server.TenantLimits{MaxSubscriptions: 1}}))
	c := dialRaw(t, tb)
	ev := &eventStreams{t: t, c: c, by: map[uint64]*quic.ReceiveStream{}}

	for _, tc := range []struct{ stream, want string }{
		{"nope", "stream not found"},
		{"secret", "forbidden"},
	} {
		m := c.subscribeRaw(t, tc.stream, nil)
		if e, ok := m.(*wire.ErrorMessage); !ok || !strings.Contains(e.Message, tc.want) {
			t.Fatalf("subscribe %s: %#v, want %q", tc.stream, m, tc.want)
		}
	}
	s := c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo", Start: &wire.StartPosition{Kind: wire.StartOffset, Offset: 99}})
	if m, ok := s.readMsg().(*wire.SubscribeCursorError); !ok {
		t.Fatalf("cursor: %#v", m)
	}

	// The stream is deleted: its event stream ends, the slot comes back.
	id := subscribeWhenFree(t, c, "gone")
	us := ev.get(id)
	if err := tb.Broker.DeleteStream("t1", "default", "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.NewReader(us, 0).ReadFrame(); err == nil {
		t.Fatal("event stream of a deleted stream goes on")
	}

	// The client stops its event stream: the slot comes back.
	id = subscribeWhenFree(t, c, "demo")
	ev.get(id).CancelRead(0)
	subscribeWhenFree(t, c, "demo")

	c.cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for st := tb.Server.Stats(); st.Subscriptions.Load() != 0 || st.ConnectionsOpen.Load() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("after the client left: %d subscriptions, %d connections", st.Subscriptions.Load(), st.ConnectionsOpen.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// Another connection of the tenant gets the tenant's one slot.
	subscribeWhenFree(t, dialRaw(t, tb), "demo")
}
