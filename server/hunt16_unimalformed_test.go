package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// A publish-only stream that sends, after its auth, a frame that reads
// but whose body does not decode (a binary publish batch cut short, JSON
// that is not a message) or a message that is no publish ends as the
// reference ends it, silently: the broker stops reading (STOP_SENDING,
// code 0), no error frame (the stream has no way back). It is malformed
// input and counted in felix_protocol_errors_total, as an unreadable
// frame is. Before, only frames that could not be read were counted.
// The connection goes on.
func TestHunt16UniStreamBadBodyCounted(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	authFrame, err := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := wire.AppendPublishBatchFrame(nil, "t1", "default", "demo", [][]byte{[]byte("x")})
	// The same frame with its body cut short: the header says so, the
	// body ends inside the payload's length.
	cut := wire.AppendFrame(nil, wire.FlagBinaryPublishBatch, batch[wire.HeaderSize:len(batch)-3])
	subscribe, err := wire.AppendMessageFrame(nil, &wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name  string
		frame []byte
	}{
		{"binary batch body cut short", cut},
		{"json that does not decode", wire.AppendFrame(nil, 0, []byte(`{"type":"publish","tenant_id":`))},
		{"a message other than a publish", subscribe},
	} {
		errs := tb.Server.Stats().ProtocolErrors.Load()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		us := c.openUni(ctx)
		_, _ = us.Write(append(append(authFrame[:len(authFrame):len(authFrame)], tc.frame...), batch...)) // fails once the broker stops reading
		select {
		case <-us.Context().Done():
		case <-ctx.Done():
			t.Fatalf("%s: the broker still reads the stream", tc.name)
		}
		cancel()
		var se *quic.StreamError
		if cause := context.Cause(us.Context()); !errors.As(cause, &se) || !se.Remote || se.ErrorCode != 0 {
			t.Fatalf("%s: stream ended with %v, want the broker's STOP_SENDING with code 0 (silent, as the reference)", tc.name, cause)
		}
		if n := tb.Server.Stats().ProtocolErrors.Load() - errs; n != 1 {
			t.Fatalf("%s: %d protocol errors counted, want 1", tc.name, n)
		}
		if n := published(tb, "t1"); n != 0 {
			t.Fatalf("after %d streams: %d events published after a malformed frame", i+1, n)
		}
	}
	s := c.open() // the connection goes on
	s.auth("t1", nil)
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("y"), RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_ok","request_id":1}`)
}
