package server_test

import (
	"context"
	"errors"
	"fmt"
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

// connAuthTimeout is the first AuthTimeout the tests in this file try.
// Tests whose set-up must beat it (dial and authenticate before the
// broker's deadline) run under testbroker.Retry: a try whose set-up
// overran the timeout (a loaded machine) is logged and tried again with
// twice the timeout, and only a conclusive try counts.
const connAuthTimeout = 150 * time.Millisecond

// connAuthTries bounds the tries: 150 ms doubled up to 2.4 s.
const connAuthTries = 5

func startConnAuth(t testing.TB, o server.Options, timeout time.Duration) *testbroker.Broker {
	o.AuthTimeout = timeout
	return testbroker.Start(t, testbroker.WithStreams("t1/default/demo"), testbroker.WithServerOptions(o))
}

// dialKeepAlive dials a raw connection that sends a QUIC keep-alive every
// 20 ms, so the idle timeout never ends it: only the broker's auth rule can.
func dialKeepAlive(t testing.TB, tb *testbroker.Broker) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := transport.Dial(ctx, tb.Addr, tb.ClientTLS, transport.Options{KeepAlivePeriod: 20 * time.Millisecond},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return &rawConn{t: t, cc: cc}
}

// dialAuthed dials a keep-alive connection and authenticates a stream on
// it as the set-up of try a: the set-up must end within a's AuthTimeout
// of the dial, else the broker may rightly close the connection first and
// the try is inconclusive (if that made the set-up fail). An auth that
// was answered ok was recorded before the deadline could fire, so a set-up
// that succeeded late is still valid. It returns the connection and its
// authenticated stream.
func dialAuthed(a *testbroker.Attempt, tb *testbroker.Broker) (*rawConn, *rawStream) {
	a.Helper()
	a.SetupBy(time.Now().Add(a.Limit))
	c := dialKeepAlive(a, tb)
	s := c.open()
	s.auth("t1", nil)
	a.SetupDone()
	return c, s
}

// expectAuthTimeoutClose waits for the broker to close c for want of an
// authenticated stream, and checks the close: application code 0 and a
// reason naming the auth timeout.
func expectAuthTimeoutClose(t testing.TB, c *rawConn, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.cc.Conn.Context().Done():
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("connection without an authenticated stream still open 10s after an auth timeout of %v", timeout)
	}
	var ae *quic.ApplicationError
	err := context.Cause(c.cc.Conn.Context())
	want := fmt.Sprintf("no stream authenticated within %v (auth timeout)", timeout)
	if !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != 0 || ae.ErrorMessage != want {
		t.Fatalf("connection closed with %v, want the broker's code 0 %q", err, want)
	}
}

func expectUnauthenticated(t testing.TB, tb *testbroker.Broker, want uint64) {
	t.Helper()
	if n := tb.Server.Stats().ConnectionsUnauthenticated.Load(); n != want {
		t.Fatalf("ConnectionsUnauthenticated = %d, want %d", n, want)
	}
}

// waitUnauthenticated polls the broker's count of connections closed by
// the auth rule until it reaches n.
func waitUnauthenticated(t testing.TB, tb *testbroker.Broker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tb.Server.Stats().ConnectionsUnauthenticated.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("ConnectionsUnauthenticated = %d after 10s, want %d", tb.Server.Stats().ConnectionsUnauthenticated.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection that opens no stream (and keeps itself alive with PINGs) is
// closed once AuthTimeout has passed since it was accepted. (Nothing to
// beat here: the close is awaited as an event, and its earliest time is
// measured from before the dial, so a slow dial cannot make it look early.)
func TestConnWithoutStreamClosedAtAuthTimeout(t *testing.T) {
	tb := startConnAuth(t, server.Options{}, connAuthTimeout)
	start := time.Now() // before the broker accepts: its deadline is later than start+timeout
	c := dialKeepAlive(t, tb)
	expectAuthTimeoutClose(t, c, connAuthTimeout)
	if d := time.Since(start); d < connAuthTimeout {
		t.Errorf("closed %v after the dial started, before the auth timeout of %v", d, connAuthTimeout)
	}
	expectUnauthenticated(t, tb, 1)
}

// A connection whose only stream never sends its auth frame is closed as
// well: the stream's own timeout resets the stream, and the connection
// goes at its deadline. The set-up (dial, open, a partial frame) must
// reach the broker before the deadline.
func TestConnWithSilentStreamClosedAtAuthTimeout(t *testing.T) {
	testbroker.Retry(t, connAuthTimeout, connAuthTries, func(a *testbroker.Attempt) {
		tb := startConnAuth(a, server.Options{}, a.Limit)
		a.SetupBy(time.Now().Add(a.Limit))
		c := dialKeepAlive(a, tb)
		s := c.open()
		// Part of a frame header: the broker sees the stream and waits for
		// the rest of the auth frame.
		s.send([]byte{0x46, 0x4c})
		a.SetupDone()
		expectAuthTimeoutClose(a, c, a.Limit)
		expectUnauthenticated(a, tb, 1)
	})
}

// A connection that authenticated a stream is never closed by the rule,
// even with no stream left open long past AuthTimeout: later idleness is
// the idle timeout's business.
func TestConnAuthenticatedOnceStaysOpen(t *testing.T) {
	testbroker.Retry(t, connAuthTimeout, connAuthTries, func(a *testbroker.Attempt) {
		tb := startConnAuth(a, server.Options{}, a.Limit)
		c, s := dialAuthed(a, tb)
		s.s.Close()
		s.expectEnd() // the broker finished its side too: no stream is open

		// Witnesses dialed after c authenticated are closed by the rule at
		// least 1× and then 2× AuthTimeout after c's deadline would have
		// been; the count would include c if the rule had closed it.
		expectAuthTimeoutClose(a, dialKeepAlive(a, tb), a.Limit)
		expectAuthTimeoutClose(a, dialKeepAlive(a, tb), a.Limit)
		expectUnauthenticated(a, tb, 2)
		if err := context.Cause(c.cc.Conn.Context()); err != nil {
			a.Fatalf("authenticated connection closed: %v", err)
		}
		c.open().auth("t1", nil)
	})
}

// A publish-only stream's auth counts as well.
func TestConnAuthenticatedByUniStreamStaysOpen(t *testing.T) {
	testbroker.Retry(t, connAuthTimeout, connAuthTries, func(a *testbroker.Attempt) {
		tb := startConnAuth(a, server.Options{}, a.Limit)
		// The set-up: the publish (so the auth) is seen by the broker
		// within the auth timeout of the dial. Nothing answers a
		// publish-only stream, so a set-up that ends late cannot tell
		// whether the auth beat the deadline: that try is inconclusive.
		deadline := time.Now().Add(a.Limit)
		a.SetupBy(deadline)
		c := dialKeepAlive(a, tb)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		us, err := c.cc.Conn.OpenUniStreamSync(ctx)
		if err != nil {
			a.Fatal(err)
		}
		b, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
		b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "demo", [][]byte{[]byte("1")})
		if _, err := us.Write(b); err != nil {
			a.Fatal(err)
		}
		us.Close()
		for published(tb, "t1") != 1 { // published: the stream authenticated
			if err := context.Cause(c.cc.Conn.Context()); err != nil {
				a.Fatalf("connection closed before the publish was seen: %v", err)
			}
			if time.Since(deadline) > 10*time.Second {
				a.Fatal("publish on the uni stream not seen")
			}
			time.Sleep(time.Millisecond)
		}
		if time.Now().After(deadline) {
			a.Inconclusive("the uni stream's publish was seen %v after the dial, past the auth timeout", a.Limit+time.Since(deadline))
		}
		a.SetupDone()
		expectAuthTimeoutClose(a, dialKeepAlive(a, tb), a.Limit)
		expectAuthTimeoutClose(a, dialKeepAlive(a, tb), a.Limit)
		expectUnauthenticated(a, tb, 2)
		if err := context.Cause(c.cc.Conn.Context()); err != nil {
			a.Fatalf("connection authenticated by a uni stream closed: %v", err)
		}
	})
}

// A refused auth (bad token) does not count: the connection is closed at
// its deadline all the same.
func TestConnWithFailedAuthClosedAtAuthTimeout(t *testing.T) {
	sg, _ := auth.GenerateKey()
	tok := issue(t, sg, auth.Claims{Tenant: "t1", Subject: "x", Perms: []string{"stream.publish:stream:t1/default/demo"}})
	testbroker.Retry(t, connAuthTimeout, connAuthTries, func(a *testbroker.Attempt) {
		tb := startConnAuth(a, server.Options{Auth: server.TokenAuth{}}, a.Limit) // no verifier: every token refused
		// The set-up: the refusal is answered before the deadline.
		a.SetupBy(time.Now().Add(a.Limit))
		c := dialKeepAlive(a, tb)
		if c.open().authWith("t1", tok) {
			a.Fatal("a token authenticated with no verifier configured")
		}
		a.SetupDone()
		expectAuthTimeoutClose(a, c, a.Limit)
		expectUnauthenticated(a, tb, 1)
		if n := tb.Server.Stats().AuthFailures.Load(); n != 1 {
			a.Errorf("AuthFailures = %d, want 1", n)
		}
	})
}

// The rule closes only connections that never authenticated: among many
// at once, exactly those are closed and counted.
func TestConnAuthRuleCountsOnlyUnauthenticated(t *testing.T) {
	testbroker.Retry(t, connAuthTimeout, connAuthTries, func(a *testbroker.Attempt) {
		tb := startConnAuth(a, server.Options{}, a.Limit)
		var authed, idle []*rawConn
		for range 4 {
			c, _ := dialAuthed(a, tb)
			authed = append(authed, c)
			idle = append(idle, dialKeepAlive(a, tb))
		}
		for _, c := range idle {
			expectAuthTimeoutClose(a, c, a.Limit)
		}
		waitUnauthenticated(a, tb, 4)
		expectAuthTimeoutClose(a, dialKeepAlive(a, tb), a.Limit)
		expectUnauthenticated(a, tb, 5)
		for i, c := range authed {
			if err := context.Cause(c.cc.Conn.Context()); err != nil {
				a.Fatalf("authenticated connection %d closed: %v", i, err)
			}
		}
	})
}
