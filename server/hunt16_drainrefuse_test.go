package server_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// A connection whose handshake completes while the broker drains (a
// client redialing during a shutdown) is closed at once with the drain's
// own close, code 0 "broker shutting down", before any stream of it is
// served, and it is counted (Counters.ConnectionsRefusedDraining) and
// logged with the count: the operator sees the redials the drain turned
// away. The drain is held open by a service request in flight. Before,
// it was closed the same way but neither counted nor logged.
func TestHunt16DrainRefusesNewConnections(t *testing.T) {
	var logs syncbuf.Buffer
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	resp := serveRaw(t, dialRaw(t, tb), wire.U64(1))
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.sendMsg(req(1, "held", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.Server.Shutdown(ctx) }()
	// The drain has begun once a request is refused for it.
	for id := uint64(2); ; id++ {
		rq.sendMsg(req(id, "late", nil))
		e, ok := rq.readMsg().(*wire.RequestError)
		if !ok || e.RequestID != id || e.Code != wire.RequestCodeNoResponders {
			t.Fatalf("request %d: %#v", id, e)
		}
		if e.Message == "broker shutting down" {
			break
		}
	}
	opened := tb.Server.Stats().ConnectionsTotal.Load()

	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	cc, err := transport.Dial(dctx, tb.Addr, tb.ClientTLS, transport.Options{}, slog.New(slog.DiscardHandler))
	if err == nil {
		defer cc.Close()
		if s, err := cc.Conn.OpenStreamSync(dctx); err == nil {
			f, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
			_, _ = s.Write(f)
			var b [1]byte
			if n, err := s.Read(b[:]); n != 0 || err == nil {
				t.Fatalf("auth on a connection dialed during the drain was answered (%d bytes, %v)", n, err)
			}
		}
		select {
		case <-cc.Conn.Context().Done():
			err = context.Cause(cc.Conn.Context())
		case <-dctx.Done():
			t.Fatal("a connection dialed during the drain is still open")
		}
	}
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != 0 || ae.ErrorMessage != "broker shutting down" {
		t.Fatalf("dial during the drain: %v, want the broker's close 0 %q", err, "broker shutting down")
	}
	if n := tb.Server.Stats().ConnectionsRefusedDraining.Load(); n != 1 {
		t.Fatalf("ConnectionsRefusedDraining %d, want 1", n)
	}
	if n := tb.Server.Stats().ConnectionsTotal.Load(); n != opened {
		t.Fatalf("the refused connection was served: ConnectionsTotal %d, was %d", n, opened)
	}
	if l := logs.String(); !strings.Contains(l, `msg="connection refused: broker shutting down"`) || !strings.Contains(l, "refused_total=1") {
		t.Fatalf("the refusal is not logged with its count:\n%s", l)
	}

	resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("answered")})
	rq.expectMsg(&wire.Reply{RequestID: 1, Payload: []byte("answered")})
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
