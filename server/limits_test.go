package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

func startLimited(t *testing.T, o server.Options) *testbroker.Broker {
	return testbroker.Start(t, testbroker.WithStreams("t1/default/demo", "t2/default/demo"),
		testbroker.WithServerOptions(o))
}

func TestTenantConnectionLimit(t *testing.T) {
	tb := startLimited(t, server.Options{TenantLimits: map[string]server.TenantLimits{"t1": {MaxConnections: 1}}})
	a := dialRaw(t, tb)
	a.open().auth("t1", nil)
	a.open().auth("t1", nil) // more streams of the same connection are fine

	b := dialRaw(t, tb)
	s := b.open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev"})
	s.expectJSON(`{"type":"error","message":"tenant connection limit exceeded (1)"}`)
	s.expectEnd()
	b.open().auth("t2", nil) // other tenants are not limited
	if n := tb.Server.LimitStats().Connections.Load(); n != 1 {
		t.Fatalf("connection refusals counted %d, want 1", n)
	}

	// When the first connection goes away its slot is free again.
	a.cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := b.open()
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev"})
		f, err := s.r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Payload) == `{"type":"ok"}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released: %s", f.Payload)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTenantSubscriptionLimit(t *testing.T) {
	tb := startLimited(t, server.Options{Limits: server.TenantLimits{MaxSubscriptions: 2}})
	c := dialRaw(t, tb)
	for i := range 2 {
		s := c.open()
		s.auth("t1", nil)
		s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
		if _, err := s.r.ReadFrame(); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	s := c.open()
	s.auth("t1", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
	s.expectJSON(`{"type":"error","message":"tenant subscription limit exceeded"}`)
	s.expectEnd()
	// The limit is per tenant: t2 still subscribes.
	s = c.open()
	s.auth("t2", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t2", Namespace: "default", Stream: "demo"})
	f, err := s.r.ReadFrame()
	if err != nil || !strings.Contains(string(f.Payload), "subscribed") {
		t.Fatalf("t2 subscribe: %v %s", err, f.Payload)
	}
	if n := tb.Server.LimitStats().Subscriptions.Load(); n != 1 {
		t.Fatalf("subscription refusals counted %d, want 1", n)
	}
}

func TestTenantPublishRateLimit(t *testing.T) {
	// 1 byte/s with a 100-byte bucket: the second 60-byte publish cannot fit
	// whatever the machine's speed.
	tb := startLimited(t, server.Options{Limits: server.TenantLimits{PublishBytesPerSec: 1, PublishBurstBytes: 100}})
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", nil)
	big := []byte(strings.Repeat("x", 60))
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: big, RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_ok","request_id":1}`)
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: big, RequestID: wire.U64(2)})
	s.expectJSON(`{"type":"publish_error","request_id":2,"message":"tenant publish rate exceeded"}`)
	// Acked binary gets the same refusal; unacked ones are dropped, counted.
	f, _ := wire.AppendAckedPublishBatchFrame(nil, 3, wire.AckPerBatch, "t1", "default", "demo", [][]byte{big})
	s.send(f)
	s.expect(wire.AppendPublishAckFrame(nil, 3, false, "tenant publish rate exceeded"))
	f, _ = wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", [][]byte{big})
	s.send(f)
	// Another tenant has its own bucket.
	s2 := c.open()
	s2.auth("t2", nil)
	s2.sendMsg(&wire.Publish{TenantID: "t2", Namespace: "default", Stream: "demo", Payload: big, RequestID: wire.U64(1)})
	s2.expectJSON(`{"type":"publish_ok","request_id":1}`)
	// A small acked publish after the dropped one proves the stream goes on
	// and orders the check after the unacked frame was handled.
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("y"), RequestID: wire.U64(4)})
	s.expectJSON(`{"type":"publish_ok","request_id":4}`)
	ls := tb.Server.LimitStats()
	if ls.Publishes.Load() != 3 || ls.PublishBytes.Load() != 180 {
		t.Fatalf("rate refusals %d (%d bytes), want 3 (180)", ls.Publishes.Load(), ls.PublishBytes.Load())
	}
	st, err := tb.Broker.Stream("t1", "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Stats().Published; got != 2 {
		t.Fatalf("t1 published %d events, want 2", got)
	}
}

// MaxConnections bounds the broker's open connections: one more is closed
// at once with "too many connections" and counted; when one closes, a new
// one is accepted again.
func TestMaxConnections(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{MaxConnections: 2}))
	first := dialRaw(t, tb)
	first.open().auth("t1", nil)
	dialRaw(t, tb).open().auth("t1", nil)

	third := dialRaw(t, tb) // the handshake completes; then the broker closes it
	select {
	case <-third.cc.Conn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a third connection stayed open")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(third.cc.Conn.Context()); !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage, "too many connections (2") {
		t.Fatalf("third connection closed with %v", err)
	}
	if n := tb.Server.Stats().ConnectionsRefused.Load(); n != 1 {
		t.Fatalf("refused %d, want 1", n)
	}

	first.cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for tb.Server.Stats().ConnectionsOpen.Load() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection is still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	dialRaw(t, tb).open().auth("t1", nil)
}
