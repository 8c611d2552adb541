package bench

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SoakMemStats is the in-memory stream's workload.
type SoakMemStats struct {
	Published int64 `json:"published"` // acked publishes
	Readers   int   `json:"readers"`
	// Received is what the readers received, together; Missed is
	// Readers × Published − Received: the readers' own drops.
	Received   int64 `json:"received"`
	Missed     int64 `json:"missed"`
	OutOfOrder int64 `json:"out_of_order"`
	Foreign    int64 `json:"foreign"` // events not from this run
	// StreamDropped is the broker's drop count on the stream; SlowDropped
	// is StreamDropped − Missed, the drops of the subscriber that never
	// reads.
	StreamDropped int64 `json:"stream_dropped"`
	SlowDropped   int64 `json:"slow_dropped"`
}

// SoakDurableStats is the durable stream's workload. Lost counts acked
// records its subscriber never received.
type SoakDurableStats struct {
	Published     int64 `json:"published"` // acked publishes
	Received      int64 `json:"received"`  // distinct records
	Lost          int64 `json:"lost"`
	Duplicates    int64 `json:"duplicates"`
	Foreign       int64 `json:"foreign"`
	BrokerDropped int64 `json:"broker_dropped"`
}

// SoakQueueStats is the consumer group's workload. Lost counts acked
// publishes the group never acked; AckedTwice, records acked more than
// once.
type SoakQueueStats struct {
	Published   int64 `json:"published"` // acked publishes
	Acked       int64 `json:"acked"`     // distinct records
	Lost        int64 `json:"lost"`
	AckedTwice  int64 `json:"acked_twice"`
	SyncAcks    int64 `json:"sync_acks"`  // Message.Ack
	AsyncAcks   int64 `json:"async_acks"` // Message.AckAsync
	Nacked      int64 `json:"nacked"`
	Redelivered int64 `json:"redelivered"`
	Foreign     int64 `json:"foreign"`
	// PerConsumer counts the deliveries each member got (the nacking one
	// first).
	PerConsumer []int64 `json:"per_consumer"`
	// The group's counters on the broker after the drain (queue_stats).
	BrokerAcked  int64 `json:"broker_acked"`
	TimedOut     int64 `json:"timed_out"`
	DeadLettered int64 `json:"dead_lettered"`
	BrokerLag    int64 `json:"broker_lag"`
}

// SoakCacheStats is the cache workload. WrongValues are GET hits whose
// value was not the key's.
type SoakCacheStats struct {
	Puts        int64 `json:"puts"`
	Gets        int64 `json:"gets"`
	Hits        int64 `json:"hits"`
	Misses      int64 `json:"misses"`
	WrongValues int64 `json:"wrong_values"`
	Evictions   int64 `json:"evictions"`   // broker
	Expirations int64 `json:"expirations"` // broker
}

// SoakWindow is one row of the report: the samples with At in (From, To].
// Memory is the window's last RSS, mean heap in use and heap objects, and
// largest goroutine count; the counts are what happened in the window.
type SoakWindow struct {
	From           time.Duration `json:"from_ns"`
	To             time.Duration `json:"to_ns"`
	Samples        int           `json:"samples"`
	RSSBytes       int64         `json:"rss_bytes"`
	HeapInuseBytes int64         `json:"heap_inuse_bytes"`
	HeapObjects    int64         `json:"heap_objects"`
	Goroutines     int64         `json:"goroutines"`
	Published      int64         `json:"published"`
	Delivered      int64         `json:"delivered"`
	Dropped        int64         `json:"dropped"`
	Acked          int64         `json:"acked"`
	CacheOps       int64         `json:"cache_ops"`
}

// SoakTrend compares one figure between the first and the last third of
// the samples after the warm-up.
type SoakTrend struct {
	First float64 `json:"first"` // median of the first third
	Last  float64 `json:"last"`  // median of the last third
	Ratio float64 `json:"ratio"` // Last / First
	Delta float64 `json:"delta"` // Last − First
	Min   float64 `json:"min"`   // over every sample after the warm-up
	Max   float64 `json:"max"`
	// SlopePerMin is the least-squares slope over every sample after the
	// warm-up, per minute.
	SlopePerMin float64 `json:"slope_per_min"`
}

// SoakVerdict is the memory verdict: a figure, not a pass or fail.
type SoakVerdict struct {
	// Available is false when fewer than 3 samples follow the warm-up.
	Available bool          `json:"available"`
	Warmup    time.Duration `json:"warmup_ns"`
	Samples   int           `json:"samples"` // after the warm-up
	// The spans of the first and last third.
	FirstFrom  time.Duration `json:"first_from_ns"`
	FirstTo    time.Duration `json:"first_to_ns"`
	LastFrom   time.Duration `json:"last_from_ns"`
	LastTo     time.Duration `json:"last_to_ns"`
	HeapInuse  SoakTrend     `json:"heap_inuse_bytes"`
	RSS        SoakTrend     `json:"rss_bytes"`
	HeapObject SoakTrend     `json:"heap_objects"`
	Goroutines SoakTrend     `json:"goroutines"`
}

// WindowCount is the number of report windows a run of c has (0 when c
// is out of bounds).
func (c SoakConfig) WindowCount() int {
	c, err := c.WithDefaults()
	if err != nil {
		return 0
	}
	return int((c.Duration + c.Window - 1) / c.Window)
}

// result fills res from the run and its samples, and lists the failures.
func (r *soakRun) result(res SoakResult, s *soakSampler) SoakResult {
	res.Samples, res.SampleErrors, res.FirstSampleErr = s.samples, s.errs, s.firstErr
	res.Windows = soakWindows(s.samples, r.cfg.Window)
	res.Verdict = soakVerdict(s.samples, r.cfg.Warmup)
	res.Final = r.final
	res.Errors, res.FirstErrors = r.errs.snapshot()

	m := &res.Mem
	m.Published, m.Readers, m.Received = r.mem.published.Load(), len(r.mem.readers), r.memReceived()
	m.Missed = max(m.Published*int64(m.Readers)-m.Received, 0)
	for _, rd := range r.mem.readers {
		m.OutOfOrder += rd.outOfOrder.Load()
		m.Foreign += rd.foreign.Load()
	}
	m.StreamDropped = r.final.MemDropped
	m.SlowDropped = max(m.StreamDropped-m.Missed, 0)

	d := &res.Durable
	d.Published, d.Received = r.dur.published.Load(), r.dur.received.Load()
	d.Duplicates, d.Foreign, d.BrokerDropped = r.dur.dups.Load(), r.dur.foreign.Load(), r.final.DurableDropped
	for i := range r.dur.acked {
		if r.dur.acked[i].Load() != 0 && r.dur.recv[i].Load() == 0 {
			d.Lost++
		}
	}

	q := &res.Queue
	q.Published, q.Acked, q.AckedTwice = r.q.published.Load(), r.q.distinct.Load(), r.q.twice.Load()
	q.SyncAcks, q.AsyncAcks, q.Nacked = r.q.syncAcks.Load(), r.q.asyncAcks.Load(), r.q.nacked.Load()
	q.Redelivered, q.Foreign = r.q.redeliv.Load(), r.q.foreign.Load()
	g := r.group
	q.BrokerAcked, q.TimedOut, q.DeadLettered, q.BrokerLag = int64(g.Acked), int64(g.TimedOut), int64(g.DeadLettered), int64(g.Lag)
	for i := range r.q.perCons {
		q.PerConsumer = append(q.PerConsumer, r.q.perCons[i].Load())
	}
	for i := range r.q.pubAcked {
		if r.q.pubAcked[i].Load() != 0 && r.q.acks[i].Load() == 0 {
			q.Lost++
		}
	}

	c := &res.Cache
	c.Puts, c.Gets, c.Hits, c.Misses = r.kv.puts.Load(), r.kv.gets.Load(), r.kv.hits.Load(), r.kv.misses.Load()
	c.WrongValues, c.Evictions, c.Expirations = r.kv.bad.Load(), r.final.CacheEvictions, r.final.CacheExpirations

	res.Failures = soakFailures(res)
	return res
}

// soakFailures says how the workload broke, if it did.
func soakFailures(res SoakResult) []string {
	var f []string
	add := func(bad bool, format string, args ...any) {
		if bad {
			f = append(f, fmt.Sprintf(format, args...))
		}
	}
	var errs int64
	for _, n := range res.Errors {
		errs += n
	}
	add(errs > 0, "%d operations failed (%s)", errs, soakErrorCounts(res.Errors))
	d, q := res.Durable, res.Queue
	add(d.Lost > 0, "durable stream: %d acked records never reached its subscriber (the broker dropped %d on that stream)",
		d.Lost, d.BrokerDropped)
	add(d.Duplicates > 0, "durable stream: %d records delivered twice", d.Duplicates)
	add(q.AckedTwice > 0, "queue: %d records acked twice", q.AckedTwice)
	add(q.Lost > 0, "queue: %d acked publishes never acked by the group (%d dead-lettered)", q.Lost, q.DeadLettered)
	add(res.Mem.OutOfOrder > 0, "in-memory stream: %d events out of order", res.Mem.OutOfOrder)
	add(res.Cache.WrongValues > 0, "cache: %d GETs returned another key's value", res.Cache.WrongValues)
	add(len(res.Samples) < 2, "no sample of the broker's memory was taken during the load (%d failed: %s)",
		res.SampleErrors, res.FirstSampleErr)
	return f
}

func soakErrorCounts(errs map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, errs[k]))
	}
	return strings.Join(parts, ", ")
}

// soakWindows cuts the samples after the first (the baseline, At 0) into
// windows of length w.
func soakWindows(samples []SoakSample, w time.Duration) []SoakWindow {
	var out []SoakWindow
	for i := 1; i < len(samples); {
		prev := samples[i-1]
		idx := (samples[i].At - 1) / w // a sample at exactly k×w ends window k-1
		win := SoakWindow{From: idx * w, To: (idx + 1) * w}
		var heap, objs int64
		for ; i < len(samples) && (samples[i].At-1)/w == idx; i++ {
			s := samples[i]
			win.Samples++
			heap += s.HeapInuseBytes
			objs += s.HeapObjects
			win.Goroutines = max(win.Goroutines, s.Goroutines)
		}
		last := samples[i-1]
		win.RSSBytes = last.RSSBytes
		win.HeapInuseBytes, win.HeapObjects = heap/int64(win.Samples), objs/int64(win.Samples)
		win.Published, win.Delivered = last.Published-prev.Published, last.Delivered-prev.Delivered
		win.Dropped, win.Acked = last.Dropped()-prev.Dropped(), last.Acked-prev.Acked
		win.CacheOps = last.CacheOps - prev.CacheOps
		out = append(out, win)
	}
	return out
}

// soakVerdict compares the first and the last third of the samples taken
// after the warm-up.
func soakVerdict(samples []SoakSample, warmup time.Duration) SoakVerdict {
	v := SoakVerdict{Warmup: warmup}
	var post []SoakSample
	for _, s := range samples {
		if s.At > 0 && s.At >= warmup {
			post = append(post, s)
		}
	}
	v.Samples = len(post)
	if len(post) < 3 {
		return v
	}
	v.Available = true
	third := len(post) / 3
	first, last := post[:third], post[len(post)-third:]
	v.FirstFrom, v.FirstTo = first[0].At, first[len(first)-1].At
	v.LastFrom, v.LastTo = last[0].At, last[len(last)-1].At
	trend := func(f func(SoakSample) int64) SoakTrend {
		t := SoakTrend{First: sampleMedian(first, f), Last: sampleMedian(last, f), Min: float64(f(post[0])), Max: float64(f(post[0]))}
		if t.First != 0 {
			t.Ratio = t.Last / t.First
		}
		t.Delta = t.Last - t.First
		// Least squares over (minutes, value).
		var sx, sy, sxx, sxy float64
		n := float64(len(post))
		for _, s := range post {
			x, y := s.At.Minutes(), float64(f(s))
			sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
			t.Min, t.Max = min(t.Min, y), max(t.Max, y)
		}
		if den := n*sxx - sx*sx; den != 0 {
			t.SlopePerMin = (n*sxy - sx*sy) / den
		}
		return t
	}
	v.HeapInuse = trend(func(s SoakSample) int64 { return s.HeapInuseBytes })
	v.RSS = trend(func(s SoakSample) int64 { return s.RSSBytes })
	v.HeapObject = trend(func(s SoakSample) int64 { return s.HeapObjects })
	v.Goroutines = trend(func(s SoakSample) int64 { return s.Goroutines })
	return v
}

// sampleMedian is the median of f over samples (the mean of the middle
// two for an even count).
func sampleMedian(samples []SoakSample, f func(SoakSample) int64) float64 {
	v := slices.Sorted(func(yield func(int64) bool) {
		for _, s := range samples {
			if !yield(f(s)) {
				return
			}
		}
	})
	n := len(v)
	return float64(v[(n-1)/2]+v[n/2]) / 2
}

// mib formats bytes in MiB with one decimal.
func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 0, 64) }

// FormatSoak is the soak's text report: the load, a table per window, the
// memory verdict and what every workload did.
func FormatSoak(res SoakResult) string {
	var b strings.Builder
	c := res.Config
	fmt.Fprintf(&b, "broker: %s\n", res.Broker)
	fmt.Fprintf(&b, "load: %s (memory verdict after a %s warm-up), sampled every %s; payload %d B\n",
		c.Duration, c.Warmup, c.SampleInterval, c.Payload)
	fmt.Fprintf(&b, "  in-memory stream %d/s → %d readers + 1 subscriber that never reads (drop_new)\n", c.MemRate, c.MemReaders)
	fmt.Fprintf(&b, "  durable stream %d/s → 1 subscriber\n", c.DurableRate)
	fmt.Fprintf(&b, "  queue %d/s → 1 consumer nacking the first delivery of every %dth record (delay %s) + %d consumers; all ack alternately with Ack and AckAsync\n",
		c.QueueRate, c.NackEvery, c.NackDelay, c.QueueConsumers)
	fmt.Fprintf(&b, "  cache %d ops/s, PUT/GET alternating over %d keys, %d B values, TTL %s–%s\n\n",
		c.CacheRate, c.CacheKeys, c.CacheValue, c.CacheTTLMin, c.CacheTTLMax)

	rows := [][]string{{"window s", "rss MiB", "heap MiB", "heap objects", "goroutines", "published", "delivered", "dropped", "acked", "cache ops"}}
	for _, w := range res.Windows {
		rows = append(rows, []string{secs(w.From) + "–" + secs(w.To), mib(w.RSSBytes), mib(w.HeapInuseBytes),
			strconv.FormatInt(w.HeapObjects, 10), strconv.FormatInt(w.Goroutines, 10), strconv.FormatInt(w.Published, 10),
			strconv.FormatInt(w.Delivered, 10), strconv.FormatInt(w.Dropped, 10), strconv.FormatInt(w.Acked, 10),
			strconv.FormatInt(w.CacheOps, 10)})
	}
	b.WriteString(renderTable(rows, []string{"(rss: last sample; heap in use and heap objects: mean; goroutines: max; counts: during the window; dropped: by the broker on both streams)"}))
	if len(res.Samples) > 0 {
		s := res.Samples[0]
		fmt.Fprintf(&b, "before the load: rss %s MiB, heap in use %s MiB, %d heap objects, %d goroutines\n",
			mib(s.RSSBytes), mib(s.HeapInuseBytes), s.HeapObjects, s.Goroutines)
	}
	b.WriteByte('\n')
	b.WriteString(formatSoakVerdict(res.Verdict))
	b.WriteByte('\n')
	b.WriteString(formatSoakWorkload(res))
	return b.String()
}

func formatSoakVerdict(v SoakVerdict) string {
	if !v.Available {
		return fmt.Sprintf("verdict: not available (%d samples after the %s warm-up, 3 needed)\n", v.Samples, v.Warmup)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: medians of the first third (%s–%ss) and last third (%s–%ss) of the %d samples after the %s warm-up\n",
		secs(v.FirstFrom), secs(v.FirstTo), secs(v.LastFrom), secs(v.LastTo), v.Samples, v.Warmup)
	bytesCell := func(x float64) string { return strconv.FormatFloat(x/(1<<20), 'f', 1, 64) }
	countCell := func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
	signed := func(s string) string {
		if !strings.HasPrefix(s, "-") {
			return "+" + s
		}
		return s
	}
	row := func(name string, t SoakTrend, cell func(float64) string, unit string) []string {
		ratio := "-"
		if t.First != 0 {
			ratio = strconv.FormatFloat(t.Ratio, 'f', 3, 64) + "x"
		}
		return []string{name, cell(t.First), cell(t.Last), ratio, signed(cell(t.Delta)) + unit,
			cell(t.Min) + "–" + cell(t.Max), signed(strconv.FormatFloat(t.SlopePerMin/unitScale(unit), 'f', 2, 64)) + unit + "/min"}
	}
	rows := [][]string{{"", "first", "last", "last/first", "change", "range", "slope"},
		row("heap in use MiB", v.HeapInuse, bytesCell, " MiB"),
		row("rss MiB", v.RSS, bytesCell, " MiB"),
		row("heap objects", v.HeapObject, countCell, ""),
		row("goroutines", v.Goroutines, countCell, ""),
	}
	b.WriteString(renderTable(rows, nil))
	return b.String()
}

func unitScale(unit string) float64 {
	if unit == " MiB" {
		return 1 << 20
	}
	return 1
}

func formatSoakWorkload(res SoakResult) string {
	var b strings.Builder
	m, d, q, c := res.Mem, res.Durable, res.Queue, res.Cache
	fmt.Fprintf(&b, "in-memory stream: %d published (acked); %d readers received %d (%d missed, %d out of order); the subscriber that never read dropped %d (broker: %d dropped on the stream, %d frames still queued)\n",
		m.Published, m.Readers, m.Received, m.Missed, m.OutOfOrder, m.SlowDropped, m.StreamDropped, res.Final.MemQueued)
	fmt.Fprintf(&b, "durable stream: %d published (acked), %d received, %d lost, %d duplicates (broker dropped %d)\n",
		d.Published, d.Received, d.Lost, d.Duplicates, d.BrokerDropped)
	fmt.Fprintf(&b, "queue: %d published (acked), %d acked by the group (%d Ack, %d AckAsync), %d lost, %d acked twice; %d nacked, %d redelivered; deliveries per consumer %v (the nacking one first); broker: %d acked, %d timed out, %d dead-lettered, lag %d\n",
		q.Published, q.Acked, q.SyncAcks, q.AsyncAcks, q.Lost, q.AckedTwice, q.Nacked, q.Redelivered, q.PerConsumer,
		q.BrokerAcked, q.TimedOut, q.DeadLettered, q.BrokerLag)
	hitRate := 0.0
	if c.Gets > 0 {
		hitRate = 100 * float64(c.Hits) / float64(c.Gets)
	}
	fmt.Fprintf(&b, "cache: %d PUTs, %d GETs (%.0f%% hits), %d wrong values; broker: %d evictions, %d expirations, %d entries, %s MiB at the end\n",
		c.Puts, c.Gets, hitRate, c.WrongValues, c.Evictions, c.Expirations, res.Final.CacheEntries, mib(res.Final.CacheBytes))
	if m.Foreign+d.Foreign+q.Foreign > 0 {
		fmt.Fprintf(&b, "records from other runs (ignored, queue ones acked): %d in-memory, %d durable, %d queue\n", m.Foreign, d.Foreign, q.Foreign)
	}
	if res.SampleErrors > 0 {
		fmt.Fprintf(&b, "samples that failed: %d (first: %s)\n", res.SampleErrors, res.FirstSampleErr)
	}
	if len(res.FirstErrors) == 0 {
		b.WriteString("errors: none\n")
	} else {
		fmt.Fprintf(&b, "errors: %s; first: %s\n", soakErrorCounts(res.Errors), strings.Join(res.FirstErrors, " | "))
	}
	if len(res.Failures) == 0 {
		b.WriteString("workload: sound\n")
	} else {
		b.WriteString("workload BROKE: " + strings.Join(res.Failures, "; ") + "\n")
	}
	return b.String()
}
