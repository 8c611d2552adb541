package metrics

import (
	"fmt"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
)

// Streams that clients create by naming them (auto-create) cannot grow
// /metrics without bound: at most MaxMetricObjects streams are exported one
// by one, durable ones first, and felix_metrics_objects_omitted counts the
// rest. Before, every auto-created stream added its series for good.
func TestMetricsCapClientChosenStreams(t *testing.T) {
	b := broker.New(broker.Options{AutoCreateStreams: true, RingCapacity: -1})
	defer b.Close()
	lg, err := commitlog.Open(t.TempDir(), commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeclareLoggedStream("zz", "ops", "orders", broker.StreamOptions{Log: lg, Durable: true}); err != nil {
		t.Fatal(err)
	}
	const extra = 7
	for i := range MaxMetricObjects + extra {
		if _, err := b.Stream("attacker", "ns", fmt.Sprintf("s%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, Options{Sources: Sources{Broker: b}})
	fams := scrape(t, s)
	if n := len(fams["felix_stream_published_events_total"].GetMetric()); n != MaxMetricObjects {
		t.Errorf("%d streams exported, want %d", n, MaxMetricObjects)
	}
	if fams.find("felix_stream_published_events_total", "tenant", "zz", "stream", "orders") == nil {
		t.Error("the durable stream was crowded out by auto-created ones")
	}
	if fams.find("felix_storage_append_total", "tenant", "zz", "stream", "orders") == nil {
		t.Error("the durable stream's storage series are missing")
	}
	if v := fams.value(t, "felix_metrics_objects_omitted", "kind", "stream"); v != extra+1 {
		t.Errorf("omitted streams = %v, want %d", v, extra+1)
	}
	if fams.find("felix_metrics_objects_omitted", "kind", "cache") != nil {
		t.Error("omitted caches reported without a cache source")
	}
	if v := fams.value(t, "felix_streams", "durable", "false"); v != MaxMetricObjects+extra {
		t.Errorf("felix_streams{durable=false} = %v, want every stream counted", v)
	}
}
