package metrics

import (
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// The per-connection subscription cap (--max-subscriptions-per-conn) and
// the bound on auto-created caches (--auto-create-max-caches) count what
// they refuse, exactly: felix_subscriptions_per_connection_refused_total
// and felix_caches_auto_create_refused_total. Before, both refused
// without a trace.
func TestHunt15LimitRefusalsCounted(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/s"),
		testbroker.WithCaches(cache.Config{}, "default/default/declared"),
		testbroker.WithServerOptions(server.Options{MaxSubscriptionsPerConn: 1, AutoCreateCaches: true, MaxAutoCreatedCaches: 2}))
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	c, err := client.Dial(t.Context(), tb.Addr, client.Options{TLS: tb.ClientTLS, PublishConns: 1, EventConns: 1, CacheConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(t.Context(), "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for range 2 {
		if sub, err := c.Subscribe(t.Context(), "default", "s"); err == nil {
			sub.Close()
			t.Fatal("a second subscription on a connection capped at one was accepted")
		}
	}
	if _, err := c.Cache("default", "auto").Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"refused1", "refused2", "refused1"} {
		if _, err := c.Cache("default", name).Put(t.Context(), "k", []byte("v")); err == nil {
			t.Fatalf("cache %s auto-created beyond the bound", name)
		}
	}
	if _, err := c.Cache("default", "declared").Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	scrape(t, ms).expect(t,
		seriesWant{"felix_subscriptions_per_connection_refused_total", nil, 2},
		seriesWant{"felix_caches_auto_create_refused_total", nil, 3},
	)
}

// The server's reply-budget waits (cache reads held while a client
// leaves its replies unread) are exported as a counter.
func TestReplyBudgetWaitsExported(t *testing.T) {
	tb := testbroker.Start(t)
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	tb.Server.Stats().ReplyBudgetWaits.Add(3)
	scrape(t, ms).expect(t, seriesWant{"felix_reply_budget_waits_total", nil, 3})
}
