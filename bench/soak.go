package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults for a zero SoakConfig: a few thousand messages per second in
// all, so that a 2-core machine running broker and load is not saturated.
const (
	DefaultSoakDuration       = 60 * time.Second
	DefaultSoakWarmup         = 10 * time.Second
	DefaultSoakSampleInterval = time.Second
	DefaultSoakPayload        = 256
	DefaultSoakMemRate        = 1000
	DefaultSoakMemReaders     = 3
	DefaultSoakDurableRate    = 500
	DefaultSoakQueueRate      = 500
	DefaultSoakQueueConsumers = 3
	DefaultSoakNackEvery      = 10
	DefaultSoakNackDelay      = 100 * time.Millisecond
	DefaultSoakCacheRate      = 1000
	DefaultSoakCacheKeys      = 4096
	DefaultSoakCacheValue     = 1024
	DefaultSoakCacheTTLMin    = 500 * time.Millisecond
	DefaultSoakCacheTTLMax    = 5 * time.Second
	DefaultSoakDrain          = 15 * time.Second
	// MaxSoakDuration bounds a soak run.
	MaxSoakDuration = 24 * time.Hour
	// maxSoakRecords bounds the records a tracked workload (durable
	// stream, queue) publishes: each has a counter per record, allocated
	// up front.
	maxSoakRecords = 1 << 24
	// soakOpGrace is how long an operation may still run after the load's
	// end before its context ends it.
	soakOpGrace = 5 * time.Second
)

// SoakConfig describes a soak run. The zero value is the default run: 60
// s of load after which memory is compared between the first and the last
// third. Every rate is per second; every workload runs for Duration,
// bounded in count (rate × Duration) and time.
type SoakConfig struct {
	// Duration is how long the load runs. Default 60s, at most 24h.
	Duration time.Duration `json:"duration_ns"`
	// Warmup is left out of the memory verdict (not of the counts).
	// Default 10s, or Duration/6 when that is shorter.
	Warmup time.Duration `json:"warmup_ns"`
	// SampleInterval is how often the broker's memory and counters are
	// read. Default 1s.
	SampleInterval time.Duration `json:"sample_interval_ns"`
	// Window is the span of one row of the report. Default Duration/12,
	// rounded up to whole sample intervals.
	Window time.Duration `json:"window_ns"`
	// Payload is the size of every published record, at least 24 bytes
	// (send time, sequence, run id). Default 256.
	Payload int `json:"payload"`
	// MemRate is the publish rate on the in-memory stream (acked
	// publishes). Default 1000.
	MemRate int `json:"mem_rate"`
	// MemReaders is the number of subscribers of the in-memory stream that
	// read everything; one more subscriber never reads, so its queue on
	// the broker fills and drops. Default 3.
	MemReaders int `json:"mem_readers"`
	// DurableRate is the publish rate on the durable stream, which one
	// subscriber reads; every acked record must reach it. Default 500.
	DurableRate int `json:"durable_rate"`
	// QueueRate is the publish rate on the queue's durable stream.
	// Default 500.
	QueueRate int `json:"queue_rate"`
	// QueueConsumers is the number of group members that ack every
	// delivery; one more member, joining first, nacks some records. Every
	// member acks alternately with Message.Ack and Message.AckAsync.
	// Default 3.
	QueueConsumers int `json:"queue_consumers"`
	// NackEvery: the nacking member nacks the first delivery of each
	// record whose sequence is a multiple of NackEvery (and acks its
	// other deliveries). Default 10.
	NackEvery int `json:"nack_every"`
	// NackDelay is the redelivery delay of a nack. Default 100ms.
	NackDelay time.Duration `json:"nack_delay_ns"`
	// CacheRate is the cache operation rate, PUTs and GETs alternating
	// over random keys. Default 1000.
	CacheRate int `json:"cache_rate"`
	// CacheKeys is the key space. Default 4096.
	CacheKeys int `json:"cache_keys"`
	// CacheValue is the value size, at least 8. Default 1024.
	CacheValue int `json:"cache_value"`
	// CacheTTLMin and CacheTTLMax bound each PUT's TTL (uniform).
	// Default 500ms and 5s.
	CacheTTLMin time.Duration `json:"cache_ttl_min_ns"`
	CacheTTLMax time.Duration `json:"cache_ttl_max_ns"`
	// Drain is how long, after the load, the run waits for the durable
	// subscriber and the queue to catch up. Default 15s.
	Drain time.Duration `json:"drain_ns"`
}

// WithDefaults returns c with its defaults filled in, or an error saying
// what is out of bounds.
func (c SoakConfig) WithDefaults() (SoakConfig, error) {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	num := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.Duration, DefaultSoakDuration)
	dur(&c.Warmup, min(DefaultSoakWarmup, c.Duration/6))
	dur(&c.SampleInterval, DefaultSoakSampleInterval)
	if c.Window == 0 && c.SampleInterval > 0 {
		n := max((c.Duration/12+c.SampleInterval-1)/c.SampleInterval, 1)
		c.Window = n * c.SampleInterval
	}
	dur(&c.NackDelay, DefaultSoakNackDelay)
	dur(&c.CacheTTLMin, DefaultSoakCacheTTLMin)
	dur(&c.CacheTTLMax, max(DefaultSoakCacheTTLMax, c.CacheTTLMin))
	dur(&c.Drain, DefaultSoakDrain)
	num(&c.Payload, DefaultSoakPayload)
	num(&c.MemRate, DefaultSoakMemRate)
	num(&c.MemReaders, DefaultSoakMemReaders)
	num(&c.DurableRate, DefaultSoakDurableRate)
	num(&c.QueueRate, DefaultSoakQueueRate)
	num(&c.QueueConsumers, DefaultSoakQueueConsumers)
	num(&c.NackEvery, DefaultSoakNackEvery)
	num(&c.CacheRate, DefaultSoakCacheRate)
	num(&c.CacheKeys, DefaultSoakCacheKeys)
	num(&c.CacheValue, DefaultSoakCacheValue)
	switch {
	case c.Duration < 0 || c.Duration > MaxSoakDuration:
		return c, fmt.Errorf("bench: soak duration %s: want up to %s", c.Duration, MaxSoakDuration)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return c, fmt.Errorf("bench: soak warm-up %s: want less than the duration %s", c.Warmup, c.Duration)
	case c.SampleInterval < 10*time.Millisecond || c.SampleInterval > c.Duration:
		return c, fmt.Errorf("bench: soak sample interval %s: want 10ms up to the duration", c.SampleInterval)
	case c.Window < c.SampleInterval:
		return c, fmt.Errorf("bench: soak window %s: want at least the sample interval %s", c.Window, c.SampleInterval)
	case c.Payload < queueHeaderSize || c.Payload > 1<<20:
		return c, fmt.Errorf("bench: soak payload %d: want %d..%d", c.Payload, queueHeaderSize, 1<<20)
	case c.MemRate < 0 || c.DurableRate < 0 || c.QueueRate < 0 || c.CacheRate < 0:
		return c, errors.New("bench: soak rates must be positive")
	case c.MemReaders < 0 || c.QueueConsumers < 0 || c.NackEvery < 0 || c.CacheKeys < 0:
		return c, errors.New("bench: soak readers, consumers, nack-every and cache keys must be positive")
	case c.CacheValue < 8 || c.CacheValue > 1<<20:
		return c, fmt.Errorf("bench: soak cache value %d: want 8..%d", c.CacheValue, 1<<20)
	case c.CacheTTLMin < time.Millisecond || c.CacheTTLMax < c.CacheTTLMin:
		return c, fmt.Errorf("bench: soak cache TTLs %s..%s: want 1ms or more, min ≤ max", c.CacheTTLMin, c.CacheTTLMax)
	case c.NackDelay < 0 || c.Drain < 0:
		return c, errors.New("bench: soak nack delay and drain must not be negative")
	}
	for _, r := range []int{c.DurableRate, c.QueueRate} {
		if c.records(r) > maxSoakRecords {
			return c, fmt.Errorf("bench: soak: %d/s for %s is over %d records; lower the rate or the duration",
				r, c.Duration, maxSoakRecords)
		}
	}
	return c, nil
}

// records is how many operations a workload at rate makes in Duration.
func (c SoakConfig) records(rate int) int {
	return int((int64(rate)*int64(c.Duration) + int64(time.Second) - 1) / int64(time.Second))
}

// SoakResult is a soak run: its samples, the report's windows, the memory
// verdict, what every workload did, and the failures of the workload.
type SoakResult struct {
	Config SoakConfig `json:"config"` // with defaults filled in
	// Broker says where the broker ran and where its figures come from.
	Broker string `json:"broker"`
	// Samples are the broker's memory and counters, one per
	// SampleInterval from the load's start (At 0, taken before the load)
	// to its end.
	Samples []SoakSample `json:"samples"`
	// SampleErrors counts samples that could not be read (left out).
	SampleErrors   int64            `json:"sample_errors"`
	FirstSampleErr string           `json:"first_sample_error,omitempty"`
	Windows        []SoakWindow     `json:"windows"`
	Verdict        SoakVerdict      `json:"verdict"`
	Mem            SoakMemStats     `json:"mem"`
	Durable        SoakDurableStats `json:"durable"`
	Queue          SoakQueueStats   `json:"queue"`
	Cache          SoakCacheStats   `json:"cache"`
	// Final are the broker's counters after the drain.
	Final SoakBrokerCounters `json:"final"`
	// Errors counts failed operations by kind ("mem publish", "queue
	// ack", ...); FirstErrors keeps the first few messages.
	Errors      map[string]int64 `json:"errors"`
	FirstErrors []string         `json:"first_errors,omitempty"`
	// Failures are why the workload broke (empty for a sound run): errors,
	// acked records lost or duplicated on the durable stream, queue
	// records acked twice or never.
	Failures []string `json:"failures,omitempty"`
}

// SoakTarget is the broker a soak runs against.
type SoakTarget struct {
	*FelixBroker
	// Where describes where the broker runs and where its memory figures
	// come from.
	Where string
	// Metrics reads the broker's metrics (the /metrics families by name).
	Metrics MetricsSource
}

// RunSoak runs the soak's workloads at once against t for cfg.Duration,
// sampling the broker's memory every cfg.SampleInterval, then waits (at
// most cfg.Drain) for the durable subscriber and the queue to catch up
// and checks the workload: it returns an error, with the full result,
// when an operation failed, an acked durable record was lost or
// duplicated, or a queue record was acked twice or never. Memory growth is
// reported (SoakResult.Verdict), never an error. prog (may be nil) gets a
// line per window.
func RunSoak(ctx context.Context, t *SoakTarget, cfg SoakConfig, prog *Progress) (res SoakResult, err error) {
	cfg, err = cfg.WithDefaults()
	res = SoakResult{Config: cfg, Broker: t.Where}
	if err != nil {
		return res, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	r := &soakRun{cfg: cfg, t: t, clk: newClock(), runID: binary.LittleEndian.Uint64(id[:]), errs: newSoakErrors()}
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return res, fmt.Errorf("bench: soak setup: %w", err)
	}
	s := &soakSampler{sr: r, prog: prog}
	base, err := s.take(ctx, 0)
	if err != nil {
		return res, fmt.Errorf("bench: soak: read the broker's metrics: %w", err)
	}
	s.add(base)

	start := r.clk.now()
	end := start + int64(cfg.Duration)
	loadCtx, cancel := context.WithDeadline(ctx, time.Now().Add(cfg.Duration+soakOpGrace))
	defer cancel()
	var wg sync.WaitGroup
	r.startLoad(loadCtx, &wg, end)
	s.run(ctx, start, end)
	wg.Wait()
	if ctx.Err() != nil {
		return r.result(res, s), fmt.Errorf("bench: soak: %w", context.Cause(ctx))
	}
	r.drain(ctx)
	r.readGroup(ctx)
	if fin, err := s.take(ctx, time.Duration(r.clk.now()-start)); err == nil {
		r.final = fin.SoakBrokerCounters
	} else {
		s.fail(err)
	}
	r.stopConsumers()
	res = r.result(res, s)
	if len(res.Failures) > 0 {
		return res, fmt.Errorf("bench: soak: the workload broke: %s", strings.Join(res.Failures, "; "))
	}
	return res, nil
}

// soakErrors counts failed operations by kind and keeps the first few
// messages; safe for concurrent use.
type soakErrors struct {
	mu     sync.Mutex
	counts map[string]int64
	first  []string
}

const soakFirstErrors = 8

func newSoakErrors() *soakErrors { return &soakErrors{counts: map[string]int64{}} }

func (e *soakErrors) add(kind string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[kind]++
	if len(e.first) < soakFirstErrors {
		e.first = append(e.first, kind+": "+err.Error())
	}
}

func (e *soakErrors) snapshot() (map[string]int64, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	counts := make(map[string]int64, len(e.counts))
	for k, v := range e.counts {
		counts[k] = v
	}
	return counts, append([]string(nil), e.first...)
}
