package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testclock"
)

func overviewOf(t *testing.T, s *Server) Overview {
	t.Helper()
	code, body := get(t, s, "/api/overview")
	if code != http.StatusOK {
		t.Fatalf("overview: HTTP %d: %s", code, body)
	}
	var o Overview
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatalf("overview: %v: %s", err, body)
	}
	return o
}

func publishN(t *testing.T, st *broker.Stream, n int) {
	t.Helper()
	for i := range n {
		if _, err := st.Publish(context.Background(), [][]byte{[]byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// The overview lists streams (sorted, with rates over the injected
// clock), subscribers, and caches with their hit rate.
func TestOverview(t *testing.T) {
	clock := testclock.New()
	b := broker.New(broker.Options{QueueCapacity: 4})
	defer b.Close()
	beta, err := b.DeclareStream("default", "default", "beta")
	if err != nil {
		t.Fatal(err)
	}
	alpha, err := b.DeclareStream("default", "default", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := beta.Subscribe(broker.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := cache.NewStore(cache.StoreOptions{})
	defer store.Close()
	kv, err := store.Create(cache.Scope{Tenant: "default", Namespace: "default", Cache: "kv"}, cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put("a", []byte("1"), cache.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "a", "a", "b"} {
		kv.Get(k)
	}
	s := startServer(t, Options{Clock: clock.Now, Sources: Sources{Broker: b, Caches: store}})
	s.SetReady(true)

	publishN(t, beta, 6) // 6 single-event frames into a queue of 4: 2 dropped
	o := overviewOf(t, s)
	if o.Status != "ready" || o.UptimeSeconds != 0 {
		t.Fatalf("status %q uptime %v", o.Status, o.UptimeSeconds)
	}
	if len(o.Streams) != 2 || o.Streams[0].Stream != "alpha" || o.Streams[1].Stream != "beta" {
		t.Fatalf("streams: %+v", o.Streams)
	}
	if st := o.Streams[1]; st.Published != 6 || st.Dropped != 2 || st.Subscriptions != 1 || st.PublishRate != 0 {
		t.Fatalf("beta: %+v", st)
	}
	if len(o.Subscribers) != 1 {
		t.Fatalf("subscribers: %+v", o.Subscribers)
	}
	if sv := o.Subscribers[0]; sv.ID != sub.ID() || sv.Stream != "beta" || sv.QueueLen != 4 || sv.QueueCap != 4 ||
		sv.Enqueued != 4 || sv.Dropped != 2 || sv.Policy != "drop_new" {
		t.Fatalf("subscriber: %+v", sv)
	}
	if len(o.Caches) != 1 || o.Caches[0].Hits != 3 || o.Caches[0].Misses != 1 || o.Caches[0].HitRate != 0.75 {
		t.Fatalf("caches: %+v", o.Caches)
	}
	if o.Groups == nil || len(o.Groups) != 0 {
		t.Fatalf("groups without a server: %#v", o.Groups)
	}

	// 10 more events on alpha over 2 s: 5/s. A request sooner than the
	// rate interval reuses the last rates.
	clock.Advance(2 * time.Second)
	publishN(t, alpha, 10)
	o = overviewOf(t, s)
	if got := o.Streams[0].PublishRate; got != 5 {
		t.Fatalf("alpha publish rate %v, want 5", got)
	}
	if o.UptimeSeconds != 2 {
		t.Fatalf("uptime %v", o.UptimeSeconds)
	}
	clock.Advance(100 * time.Millisecond)
	publishN(t, alpha, 10)
	if got := overviewOf(t, s).Streams[0].PublishRate; got != 5 {
		t.Fatalf("alpha publish rate within the interval %v, want 5 (unchanged)", got)
	}
	clock.Advance(900 * time.Millisecond) // 1 s after the last measurement, 10 events
	if got := overviewOf(t, s).Streams[0].PublishRate; got != 10 {
		t.Fatalf("alpha publish rate %v, want 10", got)
	}
	s.SetDraining()
	if got := overviewOf(t, s).Status; got != "draining" {
		t.Fatalf("status %q", got)
	}
}

// The dashboard page and its assets are served from the binary, with no
// reference to another origin.
func TestDashboardAssets(t *testing.T) {
	s := startServer(t, Options{})
	for path, want := range map[string]string{
		"/":        `<table id="streams">`,
		"/app.js":  `fetch("api/overview"`,
		"/app.css": `font-variant-numeric`,
	} {
		code, body := get(t, s, path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want a body with %q", path, code, want)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("GET %s refers to another origin", path)
		}
	}
	if code, _ := get(t, s, "/nope.js"); code != http.StatusNotFound {
		t.Errorf("GET /nope.js: %d", code)
	}
}
