package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// With auto-create on, an unacked publish to a stream that cannot be
// created (a name the broker refuses, or over the auto-created stream
// bound) is dropped and counted, as one to an unknown stream is without
// auto-create: a publish-only stream goes on, and later publishes on it
// are served.
func TestUniUnackedPublishToUncreatableStreamIsDropped(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo", "t2/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true, MaxAutoCreatedStreams: 2}))
	demo, _ := tb.Broker.Stream("t1", "default", "demo")
	sub, err := demo.Subscribe(broker.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	us := c.openUni(ctx)
	b, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "bad name", [][]byte{[]byte("lost")}) // invalid name
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "new", [][]byte{[]byte("lost")})      // over the bound
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "demo", [][]byte{[]byte("kept")})
	if _, err := us.Write(b); err != nil {
		t.Fatal(err)
	}
	us.Close()
	if _, _, err := sub.NextBatch(ctx, nil); err != nil {
		t.Fatalf("the publish after the uncreatable streams was not served: %v", err)
	}
	if n := tb.Server.Stats().UnknownStreamDrop.Load(); n != 2 {
		t.Errorf("unknown-stream drops %d, want 2", n)
	}

	// On a control stream the same unacked publishes are dropped and
	// counted too; acked ones get the reason.
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	unacked, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "bad name", [][]byte{[]byte("lost")})
	s.send(unacked)
	s.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "new", Payloads: [][]byte{[]byte("lost")}, Ack: wire.Ack(wire.AckNone)})
	s.sendMsg(&wire.PublishBatch{TenantID: "t1", Namespace: "default", Stream: "new", Payloads: [][]byte{[]byte("z")}, RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_error","request_id":1,"message":"auto-create stream t1/default/new: too many streams (limit 2)"}`)
	if n := tb.Server.Stats().UnknownStreamDrop.Load(); n != 4 {
		t.Errorf("unknown-stream drops %d, want 4", n)
	}
}
