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

// A client that dials while the broker drains (a redial during a
// shutdown) is refused at once, before any handshake: its dial fails
// with CONNECTION_REFUSED, so the SDK neither reports a reconnection to a
// broker that is going away nor waits out a timeout. It is counted
// (Counters.ConnectionsRefusedDraining) and logged with the count. The
// drain is held open by a service request in flight. Before, the dial
// succeeded and the connection was then closed with "broker shutting
// down", neither counted nor logged.
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
		cc.Close()
		t.Fatal("a dial during the drain connected")
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.Remote || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("dial during the drain: %v, want the broker's CONNECTION_REFUSED", err)
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
