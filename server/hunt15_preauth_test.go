package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// oversizedAuth is an auth frame whose payload is over
// server.MaxPreAuthFrameBytes: a token DevAuth would take, were the frame
// read.
func oversizedAuth(t *testing.T) []byte {
	b, err := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: strings.Repeat("x", server.MaxPreAuthFrameBytes)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Before a stream has authenticated the broker reads frames of at most
// server.MaxPreAuthFrameBytes, not the 16 MiB frame limit: a larger one is
// malformed input, as a frame over the frame limit is after auth. A
// control stream is reset without a reply, a publish-only stream ended
// (STOP_SENDING); both are counted in felix_protocol_errors_total and
// nothing the stream sent after is served.
func TestHunt15PreAuthFrameBound(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	errs := tb.Server.Stats().ProtocolErrors.Load()

	s := c.open()
	s.lenient = true
	s.send(oversizedAuth(t))
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)})
	s.expectReset()
	if n := tb.Server.Stats().ProtocolErrors.Load() - errs; n != 1 {
		t.Fatalf("control stream: %d protocol errors counted, want 1", n)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	us, err := c.cc.Conn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := wire.AppendMessageFrame(nil, &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x")})
	_, _ = us.Write(append(oversizedAuth(t), pub...)) // fails once the broker stops reading
	select {
	case <-us.Context().Done(): // the broker stopped reading
	case <-ctx.Done():
		t.Fatal("publish-only stream with an oversized auth frame: the broker still reads it")
	}
	if n := tb.Server.Stats().ProtocolErrors.Load() - errs; n != 2 {
		t.Fatalf("after the publish-only stream: %d protocol errors counted, want 2", n)
	}
	st, err := tb.Broker.Stream("t1", "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Stats().Published; n != 0 {
		t.Fatalf("%d events published by streams that sent an oversized auth frame", n)
	}
}

// A real token near the verifier's bound (auth.DefaultMaxTokenBytes,
// 16 KiB) fits the pre-auth frame bound with room to spare and
// authenticates; after auth the stream reads with the full frame limit.
func TestHunt15LargeTokenAuthenticates(t *testing.T) {
	tb, sg := tokenBroker(t)
	perms := []string{"stream.publish:stream:a/ns/s"}
	// The token is about 4/3 of its claims, the subject most of them.
	tok := issue(t, sg, auth.Claims{Tenant: "a", Subject: strings.Repeat("x", auth.DefaultMaxTokenBytes*3/4-300), Perms: perms})
	if len(tok) < 15<<10 || len(tok) > auth.DefaultMaxTokenBytes {
		t.Fatalf("token of %d bytes, want a little under %d", len(tok), auth.DefaultMaxTokenBytes)
	}
	s := dialRaw(t, tb).open()
	if !s.authWith("a", tok) {
		t.Fatalf("a valid token of %d bytes refused", len(tok))
	}
	big := bytes.Repeat([]byte{'p'}, 2*server.MaxPreAuthFrameBytes)
	f, err := wire.AppendPublishBatchFrame(nil, "a", "ns", "s", [][]byte{big})
	if err != nil {
		t.Fatal(err)
	}
	s.send(f) // fire-and-forget, larger than the pre-auth bound
	s.sendMsg(&wire.Publish{TenantID: "a", Namespace: "ns", Stream: "s", Payload: []byte("y"), RequestID: wire.U64(2)})
	s.expectJSON(`{"type":"publish_ok","request_id":2}`)
	st, err := tb.Broker.Stream("a", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Stats().Published; n != 2 {
		t.Fatalf("%d events published, want 2", n)
	}
	if n := tb.Server.Stats().ProtocolErrors.Load(); n != 0 {
		t.Fatalf("%d protocol errors", n)
	}
}
