package client

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// logRecorder keeps every log record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}

// mark returns the number of records so far, for lines.
func (h *logRecorder) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// lines returns the records after the first from at or above level, as
// "LEVEL message".
func (h *logRecorder) lines(from int, level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs[from:] {
		if r.Level >= level {
			out = append(out, r.Level.String()+" "+r.Message)
		}
	}
	return out
}

// pollUntil polls cond every few milliseconds until it holds, failing the
// test after 10 s.
func pollUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialUnused opens a QUIC connection to b that opens no stream: the
// broker closes it AuthTimeout after its accept. It is closed when the
// test ends.
func dialUnused(t testing.TB, b *testbroker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, b.Addr, b.ClientTLS, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
}

// idleAuthTimeout is the first AuthTimeout the tests below try, and
// idleAuthTries how many times testbroker.Retry doubles it: a client's
// connection is only safe from the broker's auth rule if its first stream
// authenticates within the timeout, which a loaded machine may not manage.
const (
	idleAuthTimeout = 200 * time.Millisecond
	idleAuthTries   = 5
)

// authSteps times the steps of a try that may dial connections (Dial,
// the first Subscribe on an event slot, the first cache call). A step that
// returned within the try's auth timeout authenticated every connection
// it dialed before the broker's deadline for it (which runs from the
// accept, after the step began); one that took longer may have had a
// connection closed by the rule, rightly, and counts of such closes are
// then no evidence: check makes the try inconclusive instead of failed.
type authSteps struct {
	a    *testbroker.Attempt
	slow []string
}

func (s *authSteps) step(what string, f func()) {
	start := time.Now()
	f()
	if d := time.Since(start); d >= s.a.Limit {
		s.slow = append(s.slow, fmt.Sprintf("%s took %v", what, d.Round(time.Millisecond)))
	}
}

// check fails the try with msg when ok is false, or makes it inconclusive
// if a step was slow.
func (s *authSteps) check(ok bool, format string, args ...any) {
	s.a.Helper()
	if ok {
		return
	}
	if len(s.slow) > 0 {
		s.a.Inconclusive("%s, after a step slower than the auth timeout (%s)", fmt.Sprintf(format, args...), strings.Join(s.slow, "; "))
	}
	s.a.Errorf(format, args...)
}

// Dial leaves no connection the broker's auth rule would close: event and
// cache connections are dialed at their first use. A connection dialed
// after the client's, with no stream, is closed by the rule; the client's
// are not, and the first Subscribe afterwards logs nothing above debug.
func TestDialLeavesNoUnusedConnection(t *testing.T) {
	testbroker.Retry(t, idleAuthTimeout, idleAuthTries, func(a *testbroker.Attempt) {
		steps := &authSteps{a: a}
		b := startBroker(a, testbroker.WithServerOptions(server.Options{AuthTimeout: a.Limit}))
		rec := &logRecorder{}
		var c *Client
		steps.step("Dial", func() { c = dial(a, b, Options{EventConns: 2, Logger: slog.New(rec)}) })
		afterDial := rec.mark()
		ctx := testCtx(a)
		stats := b.Server.Stats()
		dialUnused(a, b)
		pollUntil(a, "the broker closed the unused connection dialed after the client", func() bool {
			return stats.ConnectionsUnauthenticated.Load() >= 1
		})
		n := stats.ConnectionsUnauthenticated.Load()
		steps.check(n == 1, "connections closed unauthenticated = %d, want 1 (only the witness)", n)
		var sub *Subscription
		steps.step("Subscribe", func() { sub = subscribe(a, ctx, c, "default", "demo") })
		if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
			a.Fatal(err)
		}
		expectEvents(a, ctx, sub, []string{"x"})
		if l := rec.lines(afterDial, slog.LevelInfo); len(l) > 0 {
			a.Errorf("logged above debug: %q", l)
		}
	})
}

// The broker closes a connection on which no stream authenticated within
// its AuthTimeout. The SDK dials event connections at their first use and
// opens a stream at once, but should one sit unused (here dialed by hand,
// as a first stream slower than the timeout would leave it) and be closed,
// the next Subscribe dials again, without an error and with nothing logged
// above debug, even with reconnection disabled (nothing was lost). Cache
// calls work too.
func TestIdleEventConnsClosedByBrokerAreRedialedQuietly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabled bool
		// seen waits until the client has seen both closes before it
		// subscribes. Without it Subscribe may race the broker's close
		// and open its stream on the closing connection.
		seen bool
	}{
		{name: "reconnect", disabled: false, seen: false},
		{name: "reconnect_seen", disabled: false, seen: true},
		{name: "reconnect_disabled", disabled: true, seen: true},
		// Subscribe may open its stream on a connection the broker is
		// closing: the SDK tries once more on a new one, even with
		// reconnection disabled.
		{name: "reconnect_disabled_racing", disabled: true, seen: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testbroker.Retry(t, idleAuthTimeout, idleAuthTries, func(a *testbroker.Attempt) {
				steps := &authSteps{a: a}
				b := startBroker(a, testbroker.WithCaches(cache.Config{}, "default/default/c"),
					testbroker.WithServerOptions(server.Options{AuthTimeout: a.Limit}))
				rec := &logRecorder{}
				var c *Client
				steps.step("Dial", func() {
					c = dial(a, b, Options{EventConns: 2, CacheConns: 1, CacheStreamsPerConn: 1,
						Reconnect: ReconnectPolicy{Disabled: tc.disabled}, Logger: slog.New(rec)})
				})
				ctx := testCtx(a)
				for _, s := range c.eventSlots {
					if _, err := s.get(ctx); err != nil {
						a.Fatalf("dial event connection: %v", err)
					}
				}
				afterDial := rec.mark() // Dial logs the socket's buffer sizes at info

				// Both event connections (and only they: the publish streams
				// authenticated at Dial) are closed by the broker.
				stats := b.Server.Stats()
				pollUntil(a, "the broker closed the 2 unused event connections", func() bool {
					return stats.ConnectionsUnauthenticated.Load() >= 2
				})
				if tc.seen {
					pollUntil(a, "the client saw its event connections closed", func() bool {
						return c.eventSlots[0].current() == nil && c.eventSlots[1].current() == nil
					})
				}

				// Two subscriptions: one on each event slot (round-robin).
				var subs []*Subscription
				for i := range 2 {
					var sub *Subscription
					var err error
					steps.step(fmt.Sprintf("Subscribe %d", i), func() { sub, err = c.Subscribe(ctx, "default", "demo") })
					steps.check(err == nil, "Subscribe %d: %v", i, err)
					if err != nil {
						a.FailNow()
					}
					a.Cleanup(func() { _ = sub.Close() })
					subs = append(subs, sub)
				}
				want := payloads("after-idle", 3)
				for _, p := range want {
					if err := c.Publish(ctx, "default", "demo", []byte(p)); err != nil {
						a.Fatalf("Publish: %v", err)
					}
				}
				for _, sub := range subs {
					expectEvents(a, ctx, sub, want)
				}
				kv := c.Cache("default", "c")
				var err error
				steps.step("cache put", func() { _, err = kv.Put(ctx, "k", []byte("v")) })
				steps.check(err == nil, "cache put: %v", err)
				if err != nil {
					a.FailNow()
				}
				if v, found, err := kv.Get(ctx, "k"); err != nil || !found || string(v) != "v" {
					a.Fatalf("cache get: %q %v %v", v, found, err)
				}

				n := stats.ConnectionsUnauthenticated.Load()
				steps.check(n == 2, "connections closed unauthenticated = %d, want 2 (the event connections)", n)
				if l := rec.lines(afterDial, slog.LevelInfo); len(l) > 0 {
					a.Errorf("logged above debug: %q", l)
				}
				redials := 0
				for _, l := range rec.lines(afterDial, slog.LevelDebug) {
					if strings.Contains(l, "before its first use") {
						redials++
					}
				}
				// One per event slot; a Subscribe that raced a close retries
				// on the other slot, which then may not need a new connection.
				steps.check(redials == 2 || !tc.seen && redials == 1,
					"debug lines about the redial: %d, want 2 (%q)", redials, rec.lines(afterDial, slog.LevelDebug))
			})
		})
	}
}

// A connection that carried a subscription is never closed by the
// broker's auth rule, however long it stays idle: the subscription keeps
// receiving well past AuthTimeout.
func TestUsedEventConnOutlivesAuthTimeout(t *testing.T) {
	testbroker.Retry(t, idleAuthTimeout, idleAuthTries, func(a *testbroker.Attempt) {
		steps := &authSteps{a: a}
		b := startBroker(a, testbroker.WithServerOptions(server.Options{AuthTimeout: a.Limit}))
		var c *Client
		steps.step("Dial", func() { c = dial(a, b, Options{EventConns: 1}) })
		ctx := testCtx(a)
		var sub *Subscription
		steps.step("Subscribe", func() { sub = subscribe(a, ctx, c, "default", "demo") })
		conn := c.eventSlots[0].current()
		// A connection dialed now is closed by the rule AuthTimeout later,
		// which is past the subscribed connection's deadline.
		before := b.Server.Stats().ConnectionsUnauthenticated.Load()
		dialUnused(a, b)
		pollUntil(a, "the broker closed the unused connection dialed after the subscription", func() bool {
			return b.Server.Stats().ConnectionsUnauthenticated.Load() > before
		})
		for i := range 3 {
			p := fmt.Sprintf("late-%d", i)
			if err := c.Publish(ctx, "default", "demo", []byte(p)); err != nil {
				a.Fatal(err)
			}
			expectEvents(a, ctx, sub, []string{p})
		}
		steps.check(c.eventSlots[0].current() == conn, "the subscription's event connection was replaced: the broker closed it")
		n := b.Server.Stats().ConnectionsUnauthenticated.Load()
		steps.check(n == before+1, "connections closed unauthenticated = %d, want %d", n, before+1)
	})
}
