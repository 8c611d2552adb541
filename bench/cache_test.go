package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCache is an in-memory CacheTarget (a map under a mutex) with knobs
// to lose keys, fail operations, corrupt values, hold operations until a
// number of them are in flight together, and record what it was asked.
type fakeCache struct {
	// Knobs, set before the run.
	dropEveryPut  int64         // the n-th, 2n-th, ... Put is acknowledged but not stored
	failEveryGet  int64         // the n-th, 2n-th, ... Get fails
	corrupt       bool          // Get returns the value with its first byte flipped
	blockGets     bool          // Get blocks until its ctx ends
	gateOp        string        // "get" or "put": the first ops of that kind wait ...
	gateN         int64         // ... until gateN of them are in flight at once
	gateTimeout   time.Duration // bounded wait for the gate (default 10 s)
	recordGetKeys bool

	mu      sync.Mutex
	m       map[string][]byte
	ttls    map[time.Duration]int
	getKeys []string

	puts, gets, setups, closes atomic.Int64
	inflight, maxInflight      atomic.Int64
	gateOnce                   sync.Once
	gate                       chan struct{}
	concurrency                int
}

func (f *fakeCache) Name() string { return "fake" }

func (f *fakeCache) Setup(_ context.Context, concurrency int) error {
	f.setups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = map[string][]byte{}
	f.ttls = map[time.Duration]int{}
	f.gate = make(chan struct{})
	f.concurrency = concurrency
	return nil
}

func (f *fakeCache) Close() error { f.closes.Add(1); return nil }

// enter counts an operation in flight and, for the gated kind, waits until
// gateN are in flight together (or the gate opened before).
func (f *fakeCache) enter(op string) (leave func(), err error) {
	n := f.inflight.Add(1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	leave = func() { f.inflight.Add(-1) }
	if op != f.gateOp || f.gateN == 0 {
		return leave, nil
	}
	if n >= f.gateN {
		f.gateOnce.Do(func() { close(f.gate) })
	}
	wait := f.gateTimeout
	if wait == 0 {
		wait = 10 * time.Second
	}
	select {
	case <-f.gate:
		return leave, nil
	case <-time.After(wait):
		leave()
		return nil, fmt.Errorf("gate: %d %ss never in flight together (max %d)", f.gateN, op, f.maxInflight.Load())
	}
}

func (f *fakeCache) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	leave, err := f.enter("put")
	if err != nil {
		return err
	}
	defer leave()
	n := f.puts.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ttls[ttl]++
	if f.dropEveryPut > 0 && n%f.dropEveryPut == 0 {
		return nil
	}
	f.m[key] = bytes.Clone(value)
	return nil
}

func (f *fakeCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	leave, err := f.enter("get")
	if err != nil {
		return nil, false, err
	}
	defer leave()
	n := f.gets.Add(1)
	if f.blockGets {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	if f.failEveryGet > 0 && n%f.failEveryGet == 0 {
		return nil, false, errors.New("injected failure")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recordGetKeys {
		f.getKeys = append(f.getKeys, key)
	}
	v, ok := f.m[key]
	if !ok {
		return nil, false, nil
	}
	v = bytes.Clone(v)
	if f.corrupt {
		v[0] ^= 0xff
	}
	return v, true, nil
}

func runFake(t *testing.T, f *fakeCache, cfg CacheConfig) CacheResult {
	t.Helper()
	res, err := RunCache(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f.setups.Load() != 1 || f.closes.Load() != 1 {
		t.Errorf("setups %d closes %d, want 1 and 1", f.setups.Load(), f.closes.Load())
	}
	return res
}

func TestRunCacheGetPreloadsSoEveryGetHits(t *testing.T) {
	f := &fakeCache{}
	res := runFake(t, f, CacheConfig{Concurrency: 4, Keys: 500, WarmupOps: 100, Ops: 2000})
	if res.Ops != 2000 || res.Latency.Count != 2000 || res.Errors != 0 || res.Misses != 0 || res.BadValues != 0 {
		t.Errorf("ops %d latency count %d errors %d misses %d bad %d", res.Ops, res.Latency.Count, res.Errors, res.Misses, res.BadValues)
	}
	if got := f.puts.Load(); got != 500 {
		t.Errorf("preload made %d Puts, want one per key (500)", got)
	}
	if got := f.gets.Load(); got != 2100 {
		t.Errorf("%d Gets, want warm-up + measured = 2100", got)
	}
	if len(f.m) != 500 {
		t.Errorf("%d keys stored, want 500", len(f.m))
	}
	if f.concurrency != 4 || res.Config.Op != CacheGet || res.Config.ValueSize != 256 || res.Target != "fake" {
		t.Errorf("setup concurrency %d, config %+v, target %q", f.concurrency, res.Config, res.Target)
	}
	if res.Duration <= 0 || res.OpsPerSec <= 0 || res.Latency.P50 <= 0 || res.FirstError != "" {
		t.Errorf("duration %s ops/s %f p50 %s first error %q", res.Duration, res.OpsPerSec, res.Latency.P50, res.FirstError)
	}
}

func TestRunCachePut(t *testing.T) {
	f := &fakeCache{}
	res := runFake(t, f, CacheConfig{Op: CachePut, Concurrency: 3, Keys: 100, ValueSize: 64, TTL: time.Minute, Ops: 1000})
	if res.Ops != 1000 || res.Errors != 0 || res.Misses != 0 {
		t.Errorf("ops %d errors %d misses %d", res.Ops, res.Errors, res.Misses)
	}
	if f.puts.Load() != 1000 || f.gets.Load() != 0 {
		t.Errorf("%d Puts %d Gets, want 1000 and 0 (no preload for put)", f.puts.Load(), f.gets.Load())
	}
	if f.ttls[time.Minute] != 1000 || len(f.ttls) != 1 {
		t.Errorf("TTLs seen %v, want every Put with 1m", f.ttls)
	}
	for k, v := range f.m {
		if len(v) != 64 || !strings.HasPrefix(k, res.Config.KeyPrefix) {
			t.Fatalf("stored %q = %d bytes", k, len(v))
		}
	}
}

func TestRunCacheCountsMissesOfDroppedKeys(t *testing.T) {
	// One worker walking the keys in order reads each key exactly once;
	// every 4th preload Put is lost.
	f := &fakeCache{dropEveryPut: 4, recordGetKeys: true}
	res := runFake(t, f, CacheConfig{Keys: 400, KeyOrder: KeysSequential, Ops: 400})
	if res.Misses != 100 || res.Ops != 400 || res.Errors != 0 {
		t.Errorf("misses %d ops %d errors %d, want 100 misses of 400", res.Misses, res.Ops, res.Errors)
	}
	if !slices.IsSorted(f.getKeys) || len(slices.Compact(slices.Clone(f.getKeys))) != 400 {
		t.Errorf("sequential order read %d keys, not each once in order", len(f.getKeys))
	}
}

func TestRunCacheCountsBadValues(t *testing.T) {
	res := runFake(t, &fakeCache{corrupt: true}, CacheConfig{Keys: 10, Ops: 50})
	if res.BadValues != 50 || res.Misses != 0 {
		t.Errorf("bad values %d misses %d, want 50 and 0", res.BadValues, res.Misses)
	}
}

func TestRunCacheCountsErrors(t *testing.T) {
	f := &fakeCache{failEveryGet: 10}
	res := runFake(t, f, CacheConfig{Concurrency: 2, Keys: 100, Ops: 1000})
	if res.Errors != 100 || res.Ops != 900 || res.Latency.Count != 900 || res.Misses != 0 {
		t.Errorf("errors %d ops %d latency count %d misses %d, want 100 / 900 / 900 / 0", res.Errors, res.Ops, res.Latency.Count, res.Misses)
	}
	if !strings.Contains(res.FirstError, "injected failure") {
		t.Errorf("first error %q", res.FirstError)
	}
}

func TestRunCacheStopsOverMaxErrors(t *testing.T) {
	f := &fakeCache{failEveryGet: 1}
	res, err := RunCache(context.Background(), f, CacheConfig{Concurrency: 4, Keys: 10, MaxErrors: 5, Duration: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "MaxErrors 5") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err = %v", err)
	}
	// The workers stop together soon after the 6th failure.
	if res.Errors < 6 || res.Errors > 6+4 || f.closes.Load() != 1 {
		t.Errorf("errors %d closes %d", res.Errors, f.closes.Load())
	}
}

func TestRunCacheRunsConcurrencyWorkersAtOnce(t *testing.T) {
	for _, op := range []string{CacheGet, CachePut} {
		for _, n := range []int{1, 8, 32} {
			t.Run(fmt.Sprintf("%s-%d", op, n), func(t *testing.T) {
				f := &fakeCache{gateOp: op, gateN: int64(n)}
				res := runFake(t, f, CacheConfig{Op: op, Concurrency: n, Keys: 1000, Ops: 20 * n})
				if res.Errors != 0 {
					t.Fatalf("%d errors: %s", res.Errors, res.FirstError)
				}
				if got := f.maxInflight.Load(); got != int64(n) {
					t.Errorf("max in flight %d, want %d", got, n)
				}
			})
		}
	}
}

func TestRunCacheDurationBound(t *testing.T) {
	res := runFake(t, &fakeCache{}, CacheConfig{Op: CachePut, Concurrency: 2, Keys: 10, Warmup: 10 * time.Millisecond, Duration: 30 * time.Millisecond})
	if res.Ops == 0 || res.Duration < 30*time.Millisecond || res.Errors != 0 {
		t.Errorf("ops %d duration %s errors %d", res.Ops, res.Duration, res.Errors)
	}
}

func TestRunCacheTimeoutEndsTheRun(t *testing.T) {
	f := &fakeCache{blockGets: true}
	res, err := RunCache(context.Background(), f, CacheConfig{Concurrency: 3, Keys: 10, Ops: 100, Timeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "config Timeout 50ms") {
		t.Fatalf("err = %v, want the run timeout", err)
	}
	if res.Errors != 0 || res.Ops != 0 || f.closes.Load() != 1 {
		t.Errorf("cut-short ops counted: ops %d errors %d; closes %d", res.Ops, res.Errors, f.closes.Load())
	}
}

func TestRunCacheSeedIsDeterministic(t *testing.T) {
	keys := func(seed uint64) []string {
		f := &fakeCache{recordGetKeys: true}
		runFake(t, f, CacheConfig{Keys: 1000, Ops: 200, Seed: seed, KeyPrefix: "k:"})
		return f.getKeys
	}
	a, b, c := keys(7), keys(7), keys(8)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 7 twice gave equal sequences: %v; seed 8 differs: %v", slices.Equal(a, b), !slices.Equal(a, c))
	}
}

func TestCacheConfigRejectsBadValues(t *testing.T) {
	for _, cfg := range []CacheConfig{
		{Op: "delete"},
		{KeyOrder: "zipf"},
		{Concurrency: -1},
		{ValueSize: 4},
		{TTL: time.Microsecond},
		{Keys: 1 << 30},
		{MaxErrors: -2},
		{Concurrency: 10_000, ValueSize: 1 << 20},
	} {
		f := &fakeCache{}
		if _, err := RunCache(context.Background(), f, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
		if f.setups.Load() != 0 {
			t.Errorf("config %+v: target set up despite the error", cfg)
		}
	}
}

func TestFormatCacheTable(t *testing.T) {
	lat := func(p50 time.Duration) Summary {
		return Summary{Count: 10, P50: p50, P90: 2 * p50, P99: 3 * p50, P999: 4 * p50, Max: 5 * p50}
	}
	cfg := func(op string, conc int) CacheConfig {
		c, err := CacheConfig{Op: op, Concurrency: conc}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	results := []CacheResult{
		{Target: "redis", Config: cfg(CacheGet, 1), Latency: lat(75500 * time.Nanosecond), Ops: 10, OpsPerSec: 13000},
		{Target: "felix", Config: cfg(CacheGet, 1), Latency: lat(90 * time.Microsecond), Ops: 10, OpsPerSec: 6500, Misses: 3, BadValues: 2},
		{Target: "felix", Config: cfg(CachePut, 32), Latency: lat(time.Millisecond), Ops: 10, OpsPerSec: 30000, Errors: 1, FirstError: "boom"},
	}
	out := FormatCacheTable(results)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for _, want := range []string{"target", "op", "conc", "value", "p50 µs", "p99.9 µs", "max µs", "ops/s", "errors", "misses", "ops/s vs redis"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	width := len([]rune(lines[0]))
	for _, l := range lines[1:4] {
		if len([]rune(l)) != width {
			t.Errorf("row not aligned with header:\n%s\n%s", lines[0], l)
		}
	}
	for i, want := range [][]string{
		{"redis", "get", "1", "256", "75.5", "151.0", "226.5", "302.0", "377.5", "13000", "0", "0", "1.00x"},
		{"felix", "get", "1", "256", "90.0", "180.0", "270.0", "360.0", "450.0", "6500", "0", "3", "0.50x"},
		{"felix", "put", "32", "256", "1000.0", "2000.0", "3000.0", "4000.0", "5000.0", "30000", "1", "0", "-"},
	} {
		if got := strings.Fields(lines[i+1]); !slices.Equal(got, want) {
			t.Errorf("row %d = %q, want %q", i, got, want)
		}
	}
	if !strings.Contains(lines[4], "2 GETs returned a value other than the one stored") || !strings.Contains(lines[5], "first error: boom") {
		t.Errorf("notes:\n%s\n%s", lines[4], lines[5])
	}
	if got := (CacheTable{Baseline: "felix"}).Format(results[:2]); !strings.Contains(got, "2.00x") {
		t.Errorf("baseline felix:\n%s", got)
	}
	if FormatCacheTable(nil) != "(no results)\n" {
		t.Error("empty table")
	}
}

func TestWriteCacheJSON(t *testing.T) {
	res := runFake(t, &fakeCache{}, CacheConfig{Keys: 10, Ops: 20})
	var buf bytes.Buffer
	if err := WriteCacheJSON(&buf, []CacheResult{res}); err != nil {
		t.Fatal(err)
	}
	var rep CacheReport
	if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Ops != 20 || rep.Results[0].Config.Op != "get" || rep.NumCPU == 0 || rep.GoVersion == "" {
		t.Errorf("round trip: %+v", rep)
	}
	if !strings.Contains(buf.String(), `"p99_ns"`) || !strings.Contains(buf.String(), `"ops_per_sec"`) || !strings.Contains(buf.String(), `"num_cpu"`) {
		t.Errorf("JSON lacks expected fields:\n%s", buf.String())
	}
}
