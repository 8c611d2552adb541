package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
)

// Scrapes and dashboard requests run while streams, caches,
// subscriptions and request/reply services come and go: every scrape
// answers 200 with a valid exposition (a series collected twice would
// fail it whole), and the broker-wide counters, which no object's
// deletion resets, never go down from one scrape to the next (Prometheus
// would read that as a restart). Meant for -race.
func TestScrapeDuringChurn(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/steady"))
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server, Caches: tb.Caches}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	steady, err := tb.Broker.Stream("default", "default", "steady")
	if err != nil {
		t.Fatal(err)
	}

	var churn sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(err error) { // the first 16 are enough to tell
		select {
		case errs <- err:
		default:
		}
	}
	churn.Go(func() { // streams declared, published to, deleted
		for i := range 40 {
			name := fmt.Sprintf("s%d", i%5)
			st, err := tb.Broker.DeclareStream("default", "default", name)
			if err != nil {
				fail(err)
				return
			}
			if _, err := st.Publish(ctx, [][]byte{[]byte("x")}); err != nil {
				fail(err)
				return
			}
			if _, err := steady.Publish(ctx, [][]byte{[]byte("y")}); err != nil {
				fail(err)
				return
			}
			if err := tb.Broker.DeleteStream("default", "default", name); err != nil {
				fail(err)
				return
			}
		}
	})
	churn.Go(func() { // caches created, used, deleted
		for i := range 40 {
			sc := cache.Scope{Tenant: "default", Namespace: "default", Cache: fmt.Sprintf("c%d", i%5)}
			ch, err := tb.Caches.Create(sc, cache.Config{})
			if err != nil {
				fail(err)
				return
			}
			ch.Get("k")
			if err := tb.Caches.Delete(sc); err != nil {
				fail(err)
				return
			}
		}
	})
	churn.Go(func() { // subscriptions to the steady stream come and go
		for range 10 {
			sub, err := c.Subscribe(ctx, "default", "steady")
			if err != nil {
				fail(err)
				return
			}
			sub.Close()
		}
	})
	churn.Go(func() { // services served, asked, left
		for i := range 10 {
			name := fmt.Sprintf("svc%d", i%3)
			svc, err := c.Serve(ctx, "default", name, func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
			if err != nil {
				fail(err)
				return
			}
			for range 3 {
				if _, err := c.Request(ctx, "default", name, []byte("q")); err != nil {
					fail(err)
				}
			}
			svc.Close()
			if _, err := c.Request(ctx, "default", "nobody", nil); !errors.Is(err, client.ErrNoResponders) {
				fail(fmt.Errorf("request to nobody: %v", err))
			}
		}
	})
	done := make(chan struct{})
	go func() { churn.Wait(); close(done) }()

	var views sync.WaitGroup
	views.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			overviewOf(t, ms)
		}
	})
	monotonic := []string{
		"felix_service_requests_total", "felix_service_replies_total", "felix_service_no_responders_total",
		"felix_connections_total", "felix_subscriber_disconnect_total",
	}
	last := map[string]float64{}
	check := func() {
		fams := scrape(t, ms)
		for _, name := range monotonic {
			v := fams.value(t, name)
			if v < last[name] {
				t.Errorf("%s went down: %v after %v", name, v, last[name])
			}
			last[name] = v
		}
		v := fams.value(t, "felix_stream_published_events_total", "stream", "steady")
		if v < last["steady"] {
			t.Errorf("steady's published events went down: %v after %v", v, last["steady"])
		}
		last["steady"] = v
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check()
	}
	views.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	check() // after the churn: every request counted
	if last["felix_service_requests_total"] != 30 || last["felix_service_replies_total"] != 30 ||
		last["felix_service_no_responders_total"] != 10 || last["steady"] != 40 {
		t.Errorf("final counters %v", last)
	}
}
