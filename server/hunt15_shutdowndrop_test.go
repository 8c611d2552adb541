package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

// Fire-and-forget publishes the broker refuses because it is closing (a
// shutdown: the engine is closed before the connections) are dropped and
// counted (felix_publish_shutdown_dropped_total), on control streams
// (JSON and binary, the stream going on) and on publish-only streams (the
// stream ends); an acked one is told. Before, all were dropped without a
// trace.
func TestHunt15ShutdownDropsCounted(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", nil)
	us, err := c.cc.Conn.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
	if _, err := us.Write(auth); err != nil {
		t.Fatal(err)
	}
	tb.Broker.Close() // as Shutdown does before it closes the connections

	none := wire.AckNone
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), Ack: &none})
	bin, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", [][]byte{[]byte("y")})
	s.send(bin)
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("z"), RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_error","request_id":1,"message":"broker closed"}`)
	if n := tb.Server.Stats().ShutdownDrop.Load(); n != 2 {
		t.Fatalf("control stream: %d shutdown drops counted, want 2", n)
	}

	pub, _ := wire.AppendMessageFrame(nil, &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("u")})
	_, _ = us.Write(pub) // fails once the broker stops reading
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	select {
	case <-us.Context().Done(): // the broker ended the stream
	case <-ctx.Done():
		t.Fatal("the publish-only stream goes on after a publish the closing broker refused")
	}
	if n := tb.Server.Stats().ShutdownDrop.Load(); n != 3 {
		t.Fatalf("after the publish-only stream: %d shutdown drops counted, want 3", n)
	}
	if n := tb.Server.Stats().UnknownStreamDrop.Load(); n != 0 {
		t.Fatalf("%d unknown-stream drops", n)
	}
}
