package metrics

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// A known workload over real QUIC, then one scrape of /metrics over HTTP:
// every counter has the value the workload implies.
func TestScrapeAfterWorkload(t *testing.T) {
	syncs := NewSyncHistogram()
	tb := testbroker.Start(t,
		testbroker.WithStreams("default/default/orders"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncAlways, OnSync: syncs.Observe, Logger: quiet},
			"default/default/jobs"),
		testbroker.WithCaches(cache.Config{}, "default/default/kv"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 10 * time.Millisecond}}))
	ms := startServer(t, Options{Sources: Sources{
		Broker: tb.Broker, Server: tb.Server, Caches: tb.Caches, Sync: syncs,
		Denials: DenialFunc(func() uint64 { return 7 }),
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One connection of each kind: publishes, events (subscriptions and
	// the consumer), cache requests.
	c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS, PublishConns: 1, EventConns: 1, CacheConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Streams: 100 events to 2 subscribers.
	var subs [2]*client.Subscription
	for i := range subs {
		if subs[i], err = c.Subscribe(ctx, "default", "orders"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if err := c.Publish(ctx, "default", "orders", []byte(fmt.Sprintf("order-%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		for range 100 {
			if _, err := s.Next(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Cache: 3 puts, then 10 gets of which 3 hit.
	kv := c.Cache("default", "kv")
	for i := range 3 {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	hits := 0
	for i := range 10 {
		_, ok, err := kv.Get(ctx, fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			hits++
		}
	}
	if hits != 3 {
		t.Fatalf("%d cache hits, want 3", hits)
	}

	// Queue: 5 records of 8 bytes, consumed and acked by one member.
	for i := range uint64(5) {
		if err := c.Publish(ctx, "default", "jobs", binary.BigEndian.AppendUint64(nil, i)); err != nil {
			t.Fatal(err)
		}
	}
	co, err := c.Consumer(ctx, "default", "jobs", "workers")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ack(ctx); err != nil { // returns once the broker confirmed it
			t.Fatal(err)
		}
	}

	// Request/reply: 3 requests answered by one responder, 1 to a service
	// nobody serves.
	defer askEcho(t, ctx, c, "default", 3).Close()

	f := scrape(t, ms)
	orders := []string{"tenant", "default", "namespace", "default", "stream", "orders"}
	jobs := []string{"tenant", "default", "namespace", "default", "stream", "jobs"}
	group := append(append([]string{}, jobs...), "group", "workers")
	kvLabels := []string{"tenant", "default", "namespace", "default", "cache", "kv"}
	for _, w := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"felix_connections_open", nil, 3},
		{"felix_connections_total", nil, 3},
		{"felix_streams", []string{"durable", "false"}, 1},
		{"felix_streams", []string{"durable", "true"}, 1},
		{"felix_auth_denials_total", nil, 7},
		{"felix_auth_failures_total", nil, 0},
		{"felix_protocol_errors_total", nil, 0},
		{"felix_tenant_limit_refused_total", []string{"limit", "connections"}, 0},
		{"felix_tenant_limit_refused_total", []string{"limit", "publish_bytes"}, 0},
		{"felix_service_requests_total", nil, 3},
		{"felix_service_replies_total", nil, 3},
		{"felix_service_no_responders_total", nil, 1},
		{"felix_service_timeouts_total", nil, 0},
		{"felix_service_late_replies_dropped_total", nil, 0},
		{"felix_service_responders", nil, 1},

		{"felix_stream_published_events_total", orders, 100},
		{"felix_stream_publish_requests_total", orders, 100},
		{"felix_stream_published_bytes_total", orders, 100 * 9},
		{"felix_stream_delivered_events_total", orders, 200},
		{"felix_stream_subscriptions", orders, 2},
		{"felix_stream_next_offset", orders, 100},
		{"felix_sub_queue_enqueued_total", orders, 200},
		{"felix_sub_queue_dropped_total", orders, 0},
		{"felix_sub_queue_len", orders, 0},

		{"felix_stream_published_events_total", jobs, 5},
		{"felix_stream_subscriptions", jobs, 0},
		{"felix_storage_append_total", jobs, 5},
		{"felix_storage_append_records_total", jobs, 5},
		{"felix_storage_append_bytes_total", jobs, 5 * (24 + 8)},
		{"felix_storage_unsynced_records", jobs, 0},
		{"felix_storage_segment_count", jobs, 1},
		{"felix_storage_write_errors_total", jobs, 0},

		{"felix_queue_members", group, 1},
		{"felix_queue_delivered_total", group, 5},
		{"felix_queue_acked_total", group, 5},
		{"felix_queue_lag", group, 0},
		{"felix_queue_in_flight", group, 0},
		{"felix_queue_redelivered_total", group, 0},
		{"felix_queue_dead_lettered_total", group, 0},
		{"felix_queue_state_errors_total", group, 0},

		{"felix_cache_puts_total", kvLabels, 3},
		{"felix_cache_hits_total", kvLabels, 3},
		{"felix_cache_misses_total", kvLabels, 7},
		{"felix_cache_entries", kvLabels, 3},
		{"felix_cache_evictions_total", kvLabels, 0},
	} {
		if got := f.value(t, w.name, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	if got := f.value(t, "felix_cache_bytes", kvLabels...); got <= 0 {
		t.Errorf("felix_cache_bytes = %v, want > 0", got)
	}
	// Every synced append was measured (concurrent ones may share an fsync).
	h := f.find("felix_storage_sync_duration_seconds").GetHistogram()
	if n := h.GetSampleCount(); n < 1 {
		t.Errorf("fsync histogram has %d samples, want at least 1", n)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if f[name] == nil {
			t.Errorf("missing the runtime metric %s", name)
		}
	}
	if f.find("felix_stream_published_events_total", "stream", "nope") != nil {
		t.Error("a series for a stream that does not exist")
	}
}

// With no sources the server exports the runtime metrics only.
func TestScrapeWithoutSources(t *testing.T) {
	f := scrape(t, startServer(t, Options{}))
	for name := range f {
		if len(name) >= 6 && name[:6] == "felix_" {
			t.Errorf("unexpected %s without sources", name)
		}
	}
	if f["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
}
