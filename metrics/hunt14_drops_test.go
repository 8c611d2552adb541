package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// hunt14Broker starts a test broker with an in-memory stream "ticks", a
// durable stream "jobs" (no "jobs.dlq") and a metrics server over both,
// and dials a client.
func hunt14Broker(t *testing.T, qo server.QueueOptions) (*testbroker.Broker, *Server, *client.Client) {
	t.Helper()
	qo.TickInterval = 10 * time.Millisecond
	tb := testbroker.Start(t,
		testbroker.WithStreams("default/default/ticks"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, Logger: quiet}, "default/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: qo}))
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return tb, ms, c
}

func hunt14Publish(t *testing.T, c *client.Client, stream string, n int) {
	t.Helper()
	for i := range n {
		if err := c.Publish(t.Context(), "default", stream, []byte(fmt.Sprintf("%s-%02d", stream, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// seriesWant is one expected series value.
type seriesWant struct {
	name   string
	labels []string
	want   float64
}

// expect checks every series of ws in f.
func (f families) expect(t *testing.T, ws ...seriesWant) {
	t.Helper()
	for _, w := range ws {
		if got := f.value(t, w.name, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
}

var (
	hunt14Ticks = []string{"tenant", "default", "namespace", "default", "stream", "ticks"}
	hunt14Jobs  = []string{"tenant", "default", "namespace", "default", "stream", "jobs"}
)

// Every way a subscriber loses events is counted, exactly, in
// felix_sub_queue_dropped_total: drop_new and drop_old on full queues
// (publishes over QUIC, subscribers that never read), and a durable
// subscription replaying the log that a purge overtakes.
func TestHunt14SubscriberDropsExported(t *testing.T) {
	tb, ms, c := hunt14Broker(t, server.QueueOptions{})
	ticks, err := tb.Broker.LookupStream("default", "default", "ticks")
	if err != nil {
		t.Fatal(err)
	}
	dropNew, dropOld := broker.DropNew, broker.DropOld
	for _, p := range []*broker.QueuePolicy{&dropNew, &dropOld} {
		sub, err := ticks.Subscribe(broker.SubscribeOptions{Policy: p, QueueCapacity: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	hunt14Publish(t, c, "ticks", 10) // one event a frame: 4 kept, 6 dropped by each

	// jobs: 5 events, a subscription from the earliest that has not read
	// yet, a purge, 1 more event. Its replay skips the 5 purged events.
	jobs, err := tb.Broker.LookupStream("default", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	hunt14Publish(t, c, "jobs", 5)
	catching, err := jobs.Subscribe(broker.SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	defer catching.Close()
	if res, err := c.PurgeStream(t.Context(), "default", "jobs"); err != nil || res.Purged != 5 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	hunt14Publish(t, c, "jobs", 1)
	if _, n, err := catching.NextBatch(t.Context(), nil); err != nil || n != 1 {
		t.Fatalf("replay after the purge: %d events, %v; want the 1 published after it", n, err)
	}

	scrape(t, ms).expect(t,
		seriesWant{"felix_stream_published_events_total", hunt14Ticks, 10},
		seriesWant{"felix_sub_queue_enqueued_total", hunt14Ticks, 4 + 10}, // drop_old took every one, then dropped the oldest
		seriesWant{"felix_sub_queue_dropped_total", hunt14Ticks, 6 + 6},
		seriesWant{"felix_sub_queue_len", hunt14Ticks, 4 + 4},
		seriesWant{"felix_stream_delivered_events_total", hunt14Ticks, 0},

		seriesWant{"felix_stream_purged_events_total", hunt14Jobs, 5},
		seriesWant{"felix_sub_queue_dropped_total", hunt14Jobs, 5},
		seriesWant{"felix_stream_delivered_events_total", hunt14Jobs, 1},
		seriesWant{"felix_stream_subscriptions", hunt14Jobs, 1},
	)
}

// Records a purge removes before a consumer group read them are counted,
// exactly, in felix_queue_lost_total, and never delivered.
func TestHunt14QueueLostExported(t *testing.T) {
	_, ms, c := hunt14Broker(t, server.QueueOptions{})
	co, err := c.Consumer(t.Context(), "default", "jobs", "workers") // the group starts at 0
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Close(); err != nil {
		t.Fatal(err)
	}
	hunt14Publish(t, c, "jobs", 10)
	if res, err := c.PurgeStream(t.Context(), "default", "jobs"); err != nil || res.Purged != 10 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	hunt14Publish(t, c, "jobs", 1)
	co, m := joinWorkers(t, c)
	defer co.Close()
	if m.Offset != 10 {
		t.Fatalf("delivered offset %d, want 10 (the one published after the purge)", m.Offset)
	}
	if err := m.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	group := append(append([]string{}, hunt14Jobs...), "group", "workers")
	scrape(t, ms).expect(t,
		seriesWant{"felix_queue_lost_total", group, 10},
		seriesWant{"felix_queue_delivered_total", group, 1},
		seriesWant{"felix_queue_acked_total", group, 1},
		seriesWant{"felix_queue_lag", group, 0},
		seriesWant{"felix_queue_dead_lettered_total", group, 0},
		seriesWant{"felix_queue_dead_letters_dropped_total", group, 0},
	)
	// The dashboard's JSON shows them too.
	code, body := get(t, ms, "/api/overview")
	var o Overview
	if err := json.Unmarshal([]byte(body), &o); code != 200 || err != nil || len(o.Groups) != 1 {
		t.Fatalf("overview: HTTP %d, %v, %s", code, err, body)
	}
	if g := o.Groups[0]; g.Lost != 10 || g.DeadLettersDropped != 0 || g.Acked != 1 {
		t.Errorf("overview group %+v, want lost 10, acked 1", g)
	}
}

// A record out of attempts on a stream with no dead-letter stream is
// dropped (logged "dead letter dropped: no dead-letter stream"); the drop
// must be counted apart from the dead letters kept:
// felix_queue_dead_letters_dropped_total.
func TestHunt14DeadLettersDroppedExported(t *testing.T) {
	_, ms, c := hunt14Broker(t, server.QueueOptions{MaxAttempts: 1})
	hunt14Publish(t, c, "jobs", 3)
	co, err := c.Consumer(t.Context(), "default", "jobs", "workers")
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	for range 3 {
		m, err := co.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Nack(t.Context(), 0); err != nil { // its last attempt: dead-lettered at once
			t.Fatal(err)
		}
	}
	group := append(append([]string{}, hunt14Jobs...), "group", "workers")
	scrape(t, ms).expect(t,
		seriesWant{"felix_queue_dead_lettered_total", group, 3},
		seriesWant{"felix_queue_dead_letters_dropped_total", group, 3},
		seriesWant{"felix_queue_dead_letter_errors_total", group, 0},
		seriesWant{"felix_queue_lag", group, 0},
	)
}
