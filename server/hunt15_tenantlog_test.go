package server_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A request naming another tenant than its stream's is refused with
// "tenant mismatch" and counted, whatever the request.
func TestHunt15TenantMismatchesCounted(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"))
	c := dialRaw(t, tb)
	for _, m := range []wire.Message{
		&wire.Subscribe{TenantID: "t2", Namespace: "default", Stream: "demo"},
		&wire.Publish{TenantID: "t2", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(1)},
		&wire.CacheGet{TenantID: "t2", Namespace: "default", Cache: "demo", Key: "k", RequestID: wire.U64(2)},
	} {
		s := c.open()
		s.auth("t1", nil)
		s.sendMsg(m)
		if e, ok := s.readMsg().(*wire.ErrorMessage); !ok || e.Message != "tenant mismatch" {
			t.Fatalf("%s naming t2: %#v, want error tenant mismatch", m.Type(), e)
		}
	}
	if n := tb.Server.Stats().TenantMismatches.Load(); n != 3 {
		t.Fatalf("tenant mismatches counted %d, want 3", n)
	}
}

type denyAll struct{}

func (denyAll) Authenticate(context.Context, string, string) (*server.Identity, error) {
	return nil, errors.New("bad token")
}

// Failed auths are each counted, but logged at most AuthFailureLogBurst
// at once: a peer trying tokens in a loop does not write a line each.
func TestHunt15AuthFailureLogsLimited(t *testing.T) {
	var logs syncbuf.Buffer
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Auth: denyAll{},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}))
	c := dialRaw(t, tb)
	const tries = 40
	for range tries {
		s := c.open()
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "guess"})
		s.expectJSON(`{"type":"error","message":"auth failed"}`)
	}
	if n := tb.Server.Stats().AuthFailures.Load(); n != tries {
		t.Fatalf("auth failures counted %d, want %d", n, tries)
	}
	lines := strings.Count(logs.String(), "auth failed")
	// The burst, and what the rate refilled while the test ran.
	if lines < server.AuthFailureLogBurst || lines >= tries {
		t.Fatalf("%d auth failure lines for %d failures, want the burst of %d and few more:\n%s", lines, tries, server.AuthFailureLogBurst, logs.String())
	}
	if !strings.Contains(logs.String(), "failures_total=") {
		t.Fatalf("the lines do not carry the count:\n%s", logs.String())
	}
}

// A subscription that dropped events and ends before the periodic drop
// report says so in the log when it closes.
func TestHunt15EndedSubscriptionLogsItsDrops(t *testing.T) {
	var logs syncbuf.Buffer
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: 4}),
		testbroker.WithServerOptions(server.Options{DropReportInterval: time.Hour,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}))
	stalled := dialRaw(t, tb)
	stalledSubscriber(t, tb, stalled)
	if dropped(tb) == 0 {
		t.Fatal("the stalled subscription dropped nothing")
	}
	stalled.cc.CloseWithError(0, "done")
	testwait.Eventually(t, "the drops in the log", func() bool {
		return strings.Contains(logs.String(), "subscription closed; its queue had dropped events")
	})
}

// Caches the auto-create bound refuses are counted each and logged at
// most once every 10 s, with the count.
func TestHunt15CacheAutoCreateRefusalLogged(t *testing.T) {
	var logs syncbuf.Buffer
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{AutoCreateCaches: true, MaxAutoCreatedCaches: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}))
	s := dialRaw(t, tb).open()
	s.auth("t1", nil)
	for i, name := range []string{"c1", "c2", "c3", "c4"} {
		s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: name, Key: "k", Value: []byte("v"), RequestID: wire.U64(uint64(i + 1))})
		m := s.readMsg()
		if _, refused := m.(*wire.ErrorMessage); refused != (i > 0) {
			t.Fatalf("put to %s: %#v", name, m)
		}
	}
	if n := tb.Server.Stats().CacheAutoCreateRefused.Load(); n != 3 {
		t.Fatalf("refusals counted %d, want 3", n)
	}
	if n := strings.Count(logs.String(), "cache not auto-created: too many caches"); n != 1 {
		t.Fatalf("%d refusal lines for 3 refusals within 10 s, want 1:\n%s", n, logs.String())
	}
}
