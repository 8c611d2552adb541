package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricsSource reads a broker's metrics: its /metrics families by name.
type MetricsSource func(ctx context.Context) (map[string]*dto.MetricFamily, error)

// ScrapeMetrics reads the Prometheus text exposition at url (a broker's
// /metrics).
func ScrapeMetrics(url string) MetricsSource {
	hc := &http.Client{}
	return func(ctx context.Context) (map[string]*dto.MetricFamily, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/plain")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		return fams, nil
	}
}

// GatherMetrics reads a registry of this process (an embedded broker's):
// its Go collector reports this process's runtime/metrics.
func GatherMetrics(g prometheus.Gatherer) MetricsSource {
	return func(context.Context) (map[string]*dto.MetricFamily, error) {
		list, err := g.Gather()
		if err != nil {
			return nil, err
		}
		fams := make(map[string]*dto.MetricFamily, len(list))
		for _, f := range list {
			fams[f.GetName()] = f
		}
		return fams, nil
	}
}

// metricSum sums the samples of family name whose labels include every
// pair of match (label, value, label, value, ...); ok is false when the
// family is missing.
func metricSum(fams map[string]*dto.MetricFamily, name string, match ...string) (sum float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !labelsMatch(m.GetLabel(), match) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, true
}

func labelsMatch(labels []*dto.LabelPair, match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		found := false
		for _, l := range labels {
			if l.GetName() == match[i] && l.GetValue() == match[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// SoakBrokerCounters are the broker's own counters of the soak's streams
// and cache, from its metrics (cumulative since the broker started).
type SoakBrokerCounters struct {
	MemDropped       int64 `json:"mem_dropped"`     // felix_sub_queue_dropped_total, in-memory stream
	MemQueued        int64 `json:"mem_queued"`      // felix_sub_queue_len, in-memory stream (frames)
	DurableDropped   int64 `json:"durable_dropped"` // felix_sub_queue_dropped_total, durable stream
	CacheEvictions   int64 `json:"cache_evictions"`
	CacheExpirations int64 `json:"cache_expirations"`
	CacheEntries     int64 `json:"cache_entries"`
	CacheBytes       int64 `json:"cache_bytes"`
}

// SoakSample is one reading of the broker's memory and of the counters.
type SoakSample struct {
	// At is the time since the load started at which the sample was due
	// (it is read at once then); 0 is before the load.
	At time.Duration `json:"at_ns"`
	// RSSBytes is process_resident_memory_bytes (0 where the process
	// collector has none), HeapInuseBytes go_memstats_heap_inuse_bytes,
	// HeapObjects go_memstats_heap_objects, Goroutines go_goroutines.
	RSSBytes       int64 `json:"rss_bytes"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
	HeapObjects    int64 `json:"heap_objects"`
	Goroutines     int64 `json:"goroutines"`
	// The harness's counters: acked publishes on the three streams,
	// events received by the in-memory readers and the durable
	// subscriber, records the group acked (distinct), cache operations
	// done.
	Published int64 `json:"published"`
	Delivered int64 `json:"delivered"`
	Acked     int64 `json:"acked"`
	CacheOps  int64 `json:"cache_ops"`
	SoakBrokerCounters
}

// Dropped is what the broker dropped on the soak's two streams.
func (s SoakSample) Dropped() int64 { return s.MemDropped + s.DurableDropped }

// brokerCounters reads the soak's objects' counters from fams.
func brokerCounters(fams map[string]*dto.MetricFamily) SoakBrokerCounters {
	get := func(name string, match ...string) int64 {
		v, _ := metricSum(fams, name, match...)
		return int64(v)
	}
	stream := func(key string) []string {
		t, ns, name := soakKey(key)
		return []string{"tenant", t, "namespace", ns, "stream", name}
	}
	kv := []string{"tenant", SoakCache.Tenant, "namespace", SoakCache.Namespace, "cache", SoakCache.Cache}
	return SoakBrokerCounters{
		MemDropped:       get("felix_sub_queue_dropped_total", stream(SoakMemStream)...),
		MemQueued:        get("felix_sub_queue_len", stream(SoakMemStream)...),
		DurableDropped:   get("felix_sub_queue_dropped_total", stream(SoakDurableStream)...),
		CacheEvictions:   get("felix_cache_evictions_total", kv...),
		CacheExpirations: get("felix_cache_expirations_total", kv...),
		CacheEntries:     get("felix_cache_entries", kv...),
		CacheBytes:       get("felix_cache_bytes", kv...),
	}
}

// soakSampler takes the run's samples.
type soakSampler struct {
	sr       *soakRun
	prog     *Progress
	samples  []SoakSample
	errs     int64
	firstErr string
	mark     int // index of the sample that ended the last reported window
}

// take reads the broker's metrics and the harness's counters.
func (s *soakSampler) take(ctx context.Context, at time.Duration) (SoakSample, error) {
	ctx, cancel := context.WithTimeout(ctx, max(s.sr.cfg.SampleInterval, time.Second))
	defer cancel()
	fams, err := s.sr.t.Metrics(ctx)
	if err != nil {
		return SoakSample{}, err
	}
	if _, ok := fams["go_memstats_heap_inuse_bytes"]; !ok {
		return SoakSample{}, fmt.Errorf("the broker's metrics have no go_memstats_heap_inuse_bytes")
	}
	get := func(name string) int64 {
		v, _ := metricSum(fams, name)
		return int64(v)
	}
	r := s.sr
	return SoakSample{
		At: at, RSSBytes: get("process_resident_memory_bytes"), HeapInuseBytes: get("go_memstats_heap_inuse_bytes"),
		HeapObjects: get("go_memstats_heap_objects"), Goroutines: get("go_goroutines"),
		Published: r.mem.published.Load() + r.dur.published.Load() + r.q.published.Load(),
		Delivered: r.memReceived() + r.dur.received.Load() + r.dur.dups.Load(),
		Acked:     r.q.distinct.Load(), CacheOps: r.kv.puts.Load() + r.kv.gets.Load(),
		SoakBrokerCounters: brokerCounters(fams),
	}, nil
}

func (s *soakSampler) fail(err error) {
	s.errs++
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

// run samples every SampleInterval from start (a clock time) until end.
func (s *soakSampler) run(ctx context.Context, start, end int64) {
	clk, iv := s.sr.clk, int64(s.sr.cfg.SampleInterval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for k := int64(1); start+k*iv <= end+iv/2; k++ {
		timer.Reset(time.Duration(start + k*iv - clk.now()))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		smp, err := s.take(ctx, time.Duration(k*iv))
		if err != nil {
			s.fail(err)
			continue
		}
		s.add(smp)
	}
}

// add keeps a sample and reports each window as it ends.
func (s *soakSampler) add(smp SoakSample) {
	s.samples = append(s.samples, smp)
	w := s.sr.cfg.Window
	prev := s.samples[s.mark]
	if smp.At/w == prev.At/w && smp.At < s.sr.cfg.Duration {
		return
	}
	s.mark = len(s.samples) - 1
	s.prog.Logf("soak %s/%s: rss %s MiB, heap in use %s MiB, %d goroutines; last %s: %d published, %d delivered, %d dropped, %d acked, %d cache ops",
		smp.At.Round(time.Second), s.sr.cfg.Duration, mib(smp.RSSBytes), mib(smp.HeapInuseBytes), smp.Goroutines,
		(smp.At - prev.At).Round(time.Second), smp.Published-prev.Published, smp.Delivered-prev.Delivered,
		smp.Dropped()-prev.Dropped(), smp.Acked-prev.Acked, smp.CacheOps-prev.CacheOps)
	s.prog.Done()
}
