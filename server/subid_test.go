package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// subscribeRaw subscribes on a new stream of c (id nil: broker-assigned)
// and returns the first reply.
func (c *rawConn) subscribeRaw(t *testing.T, stream string, id *uint64) wire.Message {
	t.Helper()
	s := c.open()
	s.t = t
	s.auth("t1", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: stream, SubscriptionID: id})
	m := s.readMsg()
	if _, ok := m.(*wire.Subscribed); !ok {
		s.expectEnd() // a refused subscribe ends its stream
	}
	return m
}

// eventStreams accepts the broker-opened event streams of c and hands
// them out by the id of their hello.
type eventStreams struct {
	t  *testing.T
	c  *rawConn
	by map[uint64]*quic.ReceiveStream
}

func (e *eventStreams) get(id uint64) *quic.ReceiveStream {
	e.t.Helper()
	for e.by[id] == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		us, err := e.c.cc.Conn.AcceptUniStream(ctx)
		cancel()
		if err != nil {
			e.t.Fatalf("accept event stream for %d: %v", id, err)
		}
		f, err := wire.NewReader(us, 0).ReadFrame()
		if err != nil {
			e.t.Fatalf("hello: %v", err)
		}
		m, err := wire.DecodeMessage(f.Payload)
		h, ok := m.(*wire.EventStreamHello)
		if err != nil || !ok {
			e.t.Fatalf("first frame of an event stream: %v %#v", err, m)
		}
		if e.by[h.SubscriptionID] != nil {
			e.t.Fatalf("two live event streams with subscription id %d on one connection", h.SubscriptionID)
		}
		e.by[h.SubscriptionID] = us
	}
	return e.by[id]
}

// A subscription id names one live subscription per connection: a
// client-chosen id that is live on the connection is refused, broker ids
// skip ids live on the connection, an id is free again once its
// subscription ends, and other connections (a reconnect) are unaffected.
func TestSubscriptionIDsUniquePerConnection(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	evs := &eventStreams{t: t, c: c, by: map[uint64]*quic.ReceiveStream{}}

	a, ok := c.subscribeRaw(t, "demo", nil).(*wire.Subscribed)
	if !ok {
		t.Fatal("first subscribe refused")
	}
	n := a.SubscriptionID
	evs.get(n)

	// The client asks for the id the broker gave the first subscription.
	taken := `{"type":"error","message":"subscription id ` + strconv.FormatUint(n, 10) + ` already in use on this connection"}`
	if m := c.subscribeRaw(t, "demo", wire.U64(n)); !sameJSON(m, taken) {
		t.Fatalf("client-chosen id %d live on the connection: got %#v", n, m)
	}

	// The client picks the id the broker would hand out next; the next
	// broker-assigned subscription must not get it.
	chosen := n + 1
	if m, ok := c.subscribeRaw(t, "demo", wire.U64(chosen)).(*wire.Subscribed); !ok || m.SubscriptionID != chosen {
		t.Fatalf("client-chosen free id %d: got %#v", chosen, m)
	}
	evs.get(chosen)
	d, ok := c.subscribeRaw(t, "demo", nil).(*wire.Subscribed)
	if !ok || d.SubscriptionID == chosen || d.SubscriptionID == n {
		t.Fatalf("broker-assigned id collides with a live one: %#v (live %d, %d)", d, n, chosen)
	}
	evs.get(d.SubscriptionID) // fails if two event streams carry one id

	// Events reach each subscription once, on its own event stream.
	pub := c.open()
	pub.auth("t1", nil)
	pub.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("e1"), RequestID: wire.U64(1)})
	pub.expectJSON(`{"type":"publish_ok","request_id":1}`)
	want := wire.AppendEventBatchFrame(nil, false, 0, [][]byte{[]byte("e1")})
	for _, id := range []uint64{n, chosen, d.SubscriptionID} {
		ev := &rawStream{t: t, r: wire.NewReader(evs.get(id), 0)}
		ev.expect(want)
	}

	// A reconnecting client resubscribes with its old ids on a new
	// connection while the old one still holds them.
	c2 := dialRaw(t, tb)
	if m, ok := c2.subscribeRaw(t, "demo", wire.U64(n)).(*wire.Subscribed); !ok || m.SubscriptionID != n {
		t.Fatalf("resubscribe on a new connection: %#v", m)
	}

	// When the client stops reading the first subscription's event stream
	// the subscription ends and its id is free again on c.
	evs.get(n).CancelRead(0)
	delete(evs.by, n)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := c.subscribeRaw(t, "demo", wire.U64(n))
		if s, ok := m.(*wire.Subscribed); ok && s.SubscriptionID == n {
			break
		}
		if !sameJSON(m, taken) {
			t.Fatalf("resubscribe with a freed id: %#v", m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("id %d still in use after its subscription ended", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	evs.get(n)
}

func sameJSON(m wire.Message, want string) bool {
	b, err := wire.EncodeMessage(m)
	return err == nil && string(b) == want
}
