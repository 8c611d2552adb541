package server_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// connAuthTimeout is the AuthTimeout of the brokers in this file.
const connAuthTimeout = 150 * time.Millisecond

func startConnAuth(t *testing.T, o server.Options) *testbroker.Broker {
	o.AuthTimeout = connAuthTimeout
	return testbroker.Start(t, testbroker.WithStreams("t1/default/demo"), testbroker.WithServerOptions(o))
}

// dialKeepAlive dials a raw connection that sends a QUIC keep-alive every
// 20 ms, so the idle timeout never ends it: only the broker's auth rule can.
func dialKeepAlive(t *testing.T, tb *testbroker.Broker) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc, err := transport.Dial(ctx, tb.Addr, tb.ClientTLS, transport.Options{KeepAlivePeriod: 20 * time.Millisecond},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return &rawConn{t: t, cc: cc}
}

// expectAuthTimeoutClose waits for the broker to close c for want of an
// authenticated stream, and checks the close: application code 0 and a
// reason naming the auth timeout.
func expectAuthTimeoutClose(t *testing.T, c *rawConn) {
	t.Helper()
	select {
	case <-c.cc.Conn.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("connection without an authenticated stream still open 5s after an auth timeout of %v", connAuthTimeout)
	}
	var ae *quic.ApplicationError
	err := context.Cause(c.cc.Conn.Context())
	if !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != 0 ||
		ae.ErrorMessage != "no stream authenticated within 150ms (auth timeout)" {
		t.Fatalf("connection closed with %v, want the broker's code 0 %q", err, "no stream authenticated within 150ms (auth timeout)")
	}
}

func expectUnauthenticated(t *testing.T, tb *testbroker.Broker, want uint64) {
	t.Helper()
	if n := tb.Server.Stats().ConnectionsUnauthenticated.Load(); n != want {
		t.Fatalf("ConnectionsUnauthenticated = %d, want %d", n, want)
	}
}

// waitUnauthenticated polls the broker's count of connections closed by
// the auth rule until it reaches n.
func waitUnauthenticated(t *testing.T, tb *testbroker.Broker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tb.Server.Stats().ConnectionsUnauthenticated.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("ConnectionsUnauthenticated = %d after 5s, want %d", tb.Server.Stats().ConnectionsUnauthenticated.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection that opens no stream (and keeps itself alive with PINGs) is
// closed once AuthTimeout has passed since it was accepted.
func TestConnWithoutStreamClosedAtAuthTimeout(t *testing.T) {
	tb := startConnAuth(t, server.Options{})
	c := dialKeepAlive(t, tb)
	start := time.Now()
	expectAuthTimeoutClose(t, c)
	if d := time.Since(start); d < connAuthTimeout/2 {
		t.Errorf("closed after %v, before the auth timeout of %v", d, connAuthTimeout)
	}
	expectUnauthenticated(t, tb, 1)
}

// A connection whose only stream never sends its auth frame is closed as
// well: the stream's own timeout resets the stream, and the connection
// goes at its deadline.
func TestConnWithSilentStreamClosedAtAuthTimeout(t *testing.T) {
	tb := startConnAuth(t, server.Options{})
	c := dialKeepAlive(t, tb)
	s := c.open()
	// Part of a frame header: the broker sees the stream and waits for
	// the rest of the auth frame.
	s.send([]byte{0x46, 0x4c})
	expectAuthTimeoutClose(t, c)
	expectUnauthenticated(t, tb, 1)
}

// A connection that authenticated a stream is never closed by the rule,
// even with no stream left open long past AuthTimeout: later idleness is
// the idle timeout's business.
func TestConnAuthenticatedOnceStaysOpen(t *testing.T) {
	tb := startConnAuth(t, server.Options{})
	c := dialKeepAlive(t, tb)
	s := c.open()
	s.auth("t1", nil)
	s.s.Close()
	s.expectEnd() // the broker finished its side too: no stream is open

	// Witnesses dialed after c authenticated are closed by the rule at
	// least 1× and then 2× AuthTimeout after c's deadline would have
	// been; the count would include c if the rule had closed it.
	expectAuthTimeoutClose(t, dialKeepAlive(t, tb))
	expectAuthTimeoutClose(t, dialKeepAlive(t, tb))
	expectUnauthenticated(t, tb, 2)
	if err := context.Cause(c.cc.Conn.Context()); err != nil {
		t.Fatalf("authenticated connection closed: %v", err)
	}
	c.open().auth("t1", nil)
}

// A publish-only stream's auth counts as well.
func TestConnAuthenticatedByUniStreamStaysOpen(t *testing.T) {
	tb := startConnAuth(t, server.Options{})
	c := dialKeepAlive(t, tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us, err := c.cc.Conn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "demo", [][]byte{[]byte("1")})
	if _, err := us.Write(b); err != nil {
		t.Fatal(err)
	}
	us.Close()
	deadline := time.Now().Add(5 * time.Second)
	for published(tb, "t1") != 1 { // published: the stream authenticated
		if time.Now().After(deadline) {
			t.Fatal("publish on the uni stream not seen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	expectAuthTimeoutClose(t, dialKeepAlive(t, tb))
	expectAuthTimeoutClose(t, dialKeepAlive(t, tb))
	expectUnauthenticated(t, tb, 2)
	if err := context.Cause(c.cc.Conn.Context()); err != nil {
		t.Fatalf("connection authenticated by a uni stream closed: %v", err)
	}
}

// A refused auth (bad token) does not count: the connection is closed at
// its deadline all the same.
func TestConnWithFailedAuthClosedAtAuthTimeout(t *testing.T) {
	tb := startConnAuth(t, server.Options{Auth: server.TokenAuth{}}) // no verifier: every token refused
	c := dialKeepAlive(t, tb)
	sg, _ := auth.GenerateKey()
	tok := issue(t, sg, auth.Claims{Tenant: "t1", Subject: "x", Perms: []string{"stream.publish:stream:t1/default/demo"}})
	if c.open().authWith("t1", tok) {
		t.Fatal("a token authenticated with no verifier configured")
	}
	expectAuthTimeoutClose(t, c)
	expectUnauthenticated(t, tb, 1)
	if n := tb.Server.Stats().AuthFailures.Load(); n != 1 {
		t.Errorf("AuthFailures = %d, want 1", n)
	}
}

// The rule closes only connections that never authenticated: among many
// at once, exactly those are closed and counted.
func TestConnAuthRuleCountsOnlyUnauthenticated(t *testing.T) {
	tb := startConnAuth(t, server.Options{})
	var authed, idle []*rawConn
	for range 4 {
		a := dialKeepAlive(t, tb)
		a.open().auth("t1", nil)
		authed = append(authed, a)
		idle = append(idle, dialKeepAlive(t, tb))
	}
	for _, c := range idle {
		expectAuthTimeoutClose(t, c)
	}
	waitUnauthenticated(t, tb, 4)
	expectAuthTimeoutClose(t, dialKeepAlive(t, tb))
	expectUnauthenticated(t, tb, 5)
	for i, c := range authed {
		if err := context.Cause(c.cc.Conn.Context()); err != nil {
			t.Fatalf("authenticated connection %d closed: %v", i, err)
		}
	}
}
