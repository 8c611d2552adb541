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
func pollUntil(t *testing.T, what string, cond func() bool) {
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
func dialUnused(t *testing.T, b *testbroker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, b.Addr, b.ClientTLS, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
}

// Dial leaves no connection the broker's auth rule would close: event and
// cache connections are dialed at their first use. A connection dialed
// after the client's, with no stream, is closed by the rule; the client's
// are not, and the first Subscribe afterwards logs nothing above debug.
func TestDialLeavesNoUnusedConnection(t *testing.T) {
	const authTimeout = 200 * time.Millisecond
	b := startBroker(t, testbroker.WithServerOptions(server.Options{AuthTimeout: authTimeout}))
	rec := &logRecorder{}
	c := dial(t, b, Options{EventConns: 2, Logger: slog.New(rec)})
	afterDial := rec.mark()
	ctx := testCtx(t)
	stats := b.Server.Stats()
	dialUnused(t, b)
	pollUntil(t, "the broker closed the unused connection dialed after the client", func() bool {
		return stats.ConnectionsUnauthenticated.Load() >= 1
	})
	if n := stats.ConnectionsUnauthenticated.Load(); n != 1 {
		t.Errorf("connections closed unauthenticated = %d, want 1 (only the witness)", n)
	}
	sub := subscribe(t, ctx, c, "default", "demo")
	if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"x"})
	if l := rec.lines(afterDial, slog.LevelInfo); len(l) > 0 {
		t.Errorf("logged above debug: %q", l)
	}
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
			const authTimeout = 200 * time.Millisecond
			b := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"),
				testbroker.WithServerOptions(server.Options{AuthTimeout: authTimeout}))
			rec := &logRecorder{}
			c := dial(t, b, Options{EventConns: 2, CacheConns: 1, CacheStreamsPerConn: 1,
				Reconnect: ReconnectPolicy{Disabled: tc.disabled}, Logger: slog.New(rec)})
			ctx := testCtx(t)
			for _, s := range c.eventSlots {
				if _, err := s.get(ctx); err != nil {
					t.Fatalf("dial event connection: %v", err)
				}
			}
			afterDial := rec.mark() // Dial logs the socket's buffer sizes at info

			// Both event connections (and only they: the publish streams
			// authenticated at Dial) are closed by the broker.
			stats := b.Server.Stats()
			pollUntil(t, "the broker closed the 2 unused event connections", func() bool {
				return stats.ConnectionsUnauthenticated.Load() >= 2
			})
			if tc.seen {
				pollUntil(t, "the client saw its event connections closed", func() bool {
					return c.eventSlots[0].current() == nil && c.eventSlots[1].current() == nil
				})
			}

			// Two subscriptions: one on each event slot (round-robin).
			subs := []*Subscription{subscribe(t, ctx, c, "default", "demo"), subscribe(t, ctx, c, "default", "demo")}
			want := payloads("after-idle", 3)
			for _, p := range want {
				if err := c.Publish(ctx, "default", "demo", []byte(p)); err != nil {
					t.Fatalf("Publish: %v", err)
				}
			}
			for _, sub := range subs {
				expectEvents(t, ctx, sub, want)
			}
			kv := c.Cache("default", "c")
			if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
				t.Fatalf("cache put: %v", err)
			}
			if v, found, err := kv.Get(ctx, "k"); err != nil || !found || string(v) != "v" {
				t.Fatalf("cache get: %q %v %v", v, found, err)
			}

			if n := stats.ConnectionsUnauthenticated.Load(); n != 2 {
				t.Errorf("connections closed unauthenticated = %d, want 2 (the event connections)", n)
			}
			if l := rec.lines(afterDial, slog.LevelInfo); len(l) > 0 {
				t.Errorf("logged above debug: %q", l)
			}
			redials := 0
			for _, l := range rec.lines(afterDial, slog.LevelDebug) {
				if strings.Contains(l, "before its first use") {
					redials++
				}
			}
			// One per event slot; a Subscribe that raced a close retries
			// on the other slot, which then may not need a new connection.
			if redials != 2 && (tc.seen || redials != 1) {
				t.Errorf("debug lines about the redial: %d, want 2 (%q)", redials, rec.lines(afterDial, slog.LevelDebug))
			}
		})
	}
}

// A connection that carried a subscription is never closed by the
// broker's auth rule, however long it stays idle: the subscription keeps
// receiving well past AuthTimeout.
func TestUsedEventConnOutlivesAuthTimeout(t *testing.T) {
	const authTimeout = 200 * time.Millisecond
	b := startBroker(t, testbroker.WithServerOptions(server.Options{AuthTimeout: authTimeout}))
	c := dial(t, b, Options{EventConns: 1})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	conn := c.eventSlots[0].current()
	// A connection dialed now is closed by the rule AuthTimeout later,
	// which is past the subscribed connection's deadline.
	before := b.Server.Stats().ConnectionsUnauthenticated.Load()
	dialUnused(t, b)
	pollUntil(t, "the broker closed the unused connection dialed after the subscription", func() bool {
		return b.Server.Stats().ConnectionsUnauthenticated.Load() > before
	})
	for i := range 3 {
		p := fmt.Sprintf("late-%d", i)
		if err := c.Publish(ctx, "default", "demo", []byte(p)); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, ctx, sub, []string{p})
	}
	if now := c.eventSlots[0].current(); now != conn {
		t.Error("the subscription's event connection was replaced: the broker closed it")
	}
	if n := b.Server.Stats().ConnectionsUnauthenticated.Load(); n != before+1 {
		t.Errorf("connections closed unauthenticated = %d, want %d", n, before+1)
	}
}
