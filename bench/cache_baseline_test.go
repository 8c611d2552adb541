package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestCacheBaselineReport measures Redis (through go-redis) on the cache
// workload and prints the table: GET and PUT of 256-byte values over 10 000
// keys at concurrency 1 and 32, 1 s warm-up and 5 s measured each. It runs
// only with FELIX_BENCH_CACHE=1: a measurement, not a test; run it without
// -race. FELIX_REDIS_ADDR uses a running redis (scripts/peers.sh start
// redis) instead of starting one; FELIX_BENCH_CACHE_DURATION (a Go
// duration) changes the measured time; FELIX_BENCH_CACHE_JSON=FILE also
// writes the JSON report.
func TestCacheBaselineReport(t *testing.T) {
	if os.Getenv("FELIX_BENCH_CACHE") != "1" {
		t.Skip("measurement only: set FELIX_BENCH_CACHE=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	addr := os.Getenv("FELIX_REDIS_ADDR")
	if addr == "" {
		addr = startRedisOrSkip(t)
	}
	d := 5 * time.Second
	if s := os.Getenv("FELIX_BENCH_CACHE_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 || v > time.Minute {
			t.Fatalf("FELIX_BENCH_CACHE_DURATION=%q: want a duration in (0, 1m]", s)
		}
		d = v
	}

	var results []CacheResult
	for _, op := range []string{CacheGet, CachePut} {
		for _, conc := range []int{1, 32} {
			cfg := CacheConfig{Op: op, Concurrency: conc, Keys: 10_000, ValueSize: 256, Warmup: time.Second, Duration: d}
			res, err := RunCache(ctx, &RedisTarget{Addr: addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, res)
		}
	}
	t.Logf("\n%s", CacheTable{Baseline: "redis"}.Format(results))
	for _, r := range results {
		t.Logf("%s %s conc %d: %d ops in %s, mean %s", r.Target, r.Config.Op, r.Config.Concurrency, r.Ops, r.Duration.Round(time.Millisecond), us(r.Latency.Mean))
	}
	if path := os.Getenv("FELIX_BENCH_CACHE_JSON"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := WriteCacheJSON(f, results); err != nil {
			t.Fatal(err)
		}
	}
}
