package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

// On an in-memory stream, a subscriber that negotiated 0x0020 gets live
// frames without offsets (the reference's behaviour); one that also
// negotiated CapMemOffsets gets the same events with their offsets (0x0024).
func TestInMemoryOffsetsOnlyWithTheExtension(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subscribe := func(flags uint16) *rawStream {
		t.Helper()
		s := c.open()
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: wire.U16(flags)})
		s.expectJSON(`{"type":"auth_ok","server_flags":` + strconv.Itoa(int(wire.ServerFlagsFor(flags))) + `}`)
		s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
		m, ok := s.readMsg().(*wire.Subscribed)
		if !ok {
			t.Fatalf("subscribe: got %T", m)
		}
		us, err := c.cc.Conn.AcceptUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ev := &rawStream{t: t, r: wire.NewReader(us, 0)}
		ev.expectMsg(&wire.EventStreamHello{SubscriptionID: m.SubscriptionID})
		return ev
	}
	plain := subscribe(wire.KnownFlags)
	withOffsets := subscribe(wire.KnownFlags | wire.CapMemOffsets)
	if got := wire.ServerFlagsFor(wire.KnownFlags | wire.CapMemOffsets); got != 0x083F {
		t.Fatalf("server_flags for 0x083F = %#x", got)
	}

	pub := c.open()
	pub.auth("t1", nil)
	for _, p := range []string{"a", "bc"} {
		pub.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte(p), Ack: wire.Ack(wire.AckNone)})
	}
	for i, p := range []string{"a", "bc"} {
		plain.expect(wire.AppendEventBatchFrame(nil, false, 0, [][]byte{[]byte(p)}))
		withOffsets.expect(wire.AppendEventBatchFrame(nil, true, uint64(i), [][]byte{[]byte(p)}))
	}
}
