package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// CacheTarget is a key/value cache under test: Felix's cache, Redis, or
// anything that can Put and Get byte values by key.
//
// RunCache calls Setup once, then Put and Get from Concurrency goroutines
// at once, and Close once at the end; a target may be set up again after
// Close.
type CacheTarget interface {
	// Name labels the target in reports ("redis", "felix", ...).
	Name() string
	// Setup connects; concurrency is the number of workers that will call
	// Get/Put concurrently (size connection pools to it).
	Setup(ctx context.Context, concurrency int) error
	// Put stores value under key, expiring after ttl (0: never). It must
	// not keep value after it returns: the caller reuses the slice.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns key's value; found is false (and err nil) on a miss.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Close releases everything Setup created.
	Close() error
}

// Cache operations (CacheConfig.Op).
const (
	CacheGet = "get"
	CachePut = "put"
)

// Key orders (CacheConfig.KeyOrder).
const (
	// KeysUniform picks every key uniformly at random from a per-worker
	// generator seeded with Seed + worker index.
	KeysUniform = "uniform"
	// KeysSequential walks the keys in order, worker w starting at
	// w × Keys / Concurrency and wrapping around.
	KeysSequential = "sequential"
)

// Defaults for a zero CacheConfig.
const (
	DefaultCacheKeys       = 10_000
	DefaultCacheValueSize  = 256
	DefaultCacheDuration   = 5 * time.Second
	DefaultCacheMaxErrors  = 100
	defaultCacheTimeoutPad = 60 * time.Second // added to the run's own length
	cacheValueHeaderSize   = 8                // key index, little-endian
	maxCacheKeys           = 1 << 22
	maxCacheValueSize      = 16 << 20
	maxCacheValueBytes     = 1 << 30 // ValueSize × Concurrency: one value buffer per worker
	maxCacheConcurrency    = 1 << 14
	minCacheTTL            = time.Millisecond
)

// CacheConfig describes one RunCache case. The zero value is a valid case:
// GET, one worker, 10 000 keys of 256-byte values, no warm-up, 5 s
// measured, no TTL.
type CacheConfig struct {
	// Op is CacheGet ("get", default) or CachePut ("put"). A get run first
	// stores every key (not measured) so that every GET should hit.
	Op string `json:"op"`
	// Concurrency is the number of closed-loop workers, each issuing its
	// next operation as soon as the previous one returns. Default 1.
	Concurrency int `json:"concurrency"`
	// Keys is the number of distinct keys. Default 10 000.
	Keys int `json:"keys"`
	// KeyPrefix prefixes every key. Default: "felixbench:" and a random
	// hex run id, so that a run never reads keys an earlier run left.
	KeyPrefix string `json:"key_prefix"`
	// KeyOrder is KeysUniform (default) or KeysSequential.
	KeyOrder string `json:"key_order"`
	// Seed seeds the per-worker key generators (worker w uses Seed + w).
	// Default 0 (a fixed seed: runs pick the same keys).
	Seed uint64 `json:"seed"`
	// ValueSize is the size of each value in bytes, at least 8 (the key's
	// index, which GETs check). Default 256.
	ValueSize int `json:"value_size"`
	// TTL is the expiry of every Put, preload included: 0 (default) never
	// expires, otherwise at least 1 ms. A TTL shorter than the run turns
	// GETs into misses.
	TTL time.Duration `json:"ttl_ns"`
	// Warmup and WarmupOps bound the unmeasured warm-up phase: WarmupOps
	// operations when > 0, else Warmup of time. Default: no warm-up.
	Warmup    time.Duration `json:"warmup_ns"`
	WarmupOps int           `json:"warmup_ops"`
	// Ops and Duration bound the measured phase: Ops operations (all
	// workers together) when > 0, else Duration of time (default 5 s).
	Duration time.Duration `json:"duration_ns"`
	Ops      int           `json:"ops"`
	// MaxErrors stops the run, with an error, once more than MaxErrors
	// operations have failed (warm-up included). Default 100; -1 is
	// unlimited.
	MaxErrors int `json:"max_errors"`
	// Timeout caps the whole run, setup and preload to close. Default:
	// 60 s plus Warmup plus Duration (when Ops is 0).
	Timeout time.Duration `json:"timeout_ns"`
}

// withDefaults fills zero fields and validates the rest.
func (c CacheConfig) withDefaults() (CacheConfig, error) {
	if c.Op == "" {
		c.Op = CacheGet
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Keys == 0 {
		c.Keys = DefaultCacheKeys
	}
	if c.KeyOrder == "" {
		c.KeyOrder = KeysUniform
	}
	if c.ValueSize == 0 {
		c.ValueSize = DefaultCacheValueSize
	}
	if c.Duration == 0 && c.Ops == 0 {
		c.Duration = DefaultCacheDuration
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = DefaultCacheMaxErrors
	}
	if c.Timeout == 0 {
		c.Timeout = defaultCacheTimeoutPad + c.Warmup
		if c.Ops == 0 {
			c.Timeout += c.Duration
		}
	}
	switch {
	case c.Op != CacheGet && c.Op != CachePut:
		return c, fmt.Errorf("bench: cache op %q: want %q or %q", c.Op, CacheGet, CachePut)
	case c.KeyOrder != KeysUniform && c.KeyOrder != KeysSequential:
		return c, fmt.Errorf("bench: key order %q: want %q or %q", c.KeyOrder, KeysUniform, KeysSequential)
	case c.Concurrency < 0, c.Keys < 0, c.ValueSize < 0, c.TTL < 0, c.Warmup < 0, c.WarmupOps < 0,
		c.Duration < 0, c.Ops < 0, c.MaxErrors < -1, c.Timeout < 0:
		return c, fmt.Errorf("bench: negative value in cache config %+v", c)
	case c.Concurrency > maxCacheConcurrency:
		return c, fmt.Errorf("bench: concurrency %d is over the harness's %d", c.Concurrency, maxCacheConcurrency)
	case c.Keys > maxCacheKeys:
		return c, fmt.Errorf("bench: %d keys is over the harness's %d", c.Keys, maxCacheKeys)
	case c.ValueSize < cacheValueHeaderSize || c.ValueSize > maxCacheValueSize:
		return c, fmt.Errorf("bench: value size %d is outside %d..%d bytes", c.ValueSize, cacheValueHeaderSize, maxCacheValueSize)
	case int64(c.ValueSize)*int64(c.Concurrency) > maxCacheValueBytes:
		return c, fmt.Errorf("bench: value size %d × concurrency %d is over the harness's %d bytes of buffers",
			c.ValueSize, c.Concurrency, maxCacheValueBytes)
	case c.TTL > 0 && c.TTL < minCacheTTL:
		return c, fmt.Errorf("bench: TTL %s is below %s", c.TTL, minCacheTTL)
	}
	if c.KeyPrefix == "" {
		var id [6]byte
		_, _ = rand.Read(id[:]) // never fails (crypto/rand)
		c.KeyPrefix = "felixbench:" + hex.EncodeToString(id[:]) + ":"
	}
	return c, nil
}

// CacheResult is the outcome of one RunCache case. Everything but Config
// and Target covers the measured phase only.
type CacheResult struct {
	Target string      `json:"target"`
	Config CacheConfig `json:"config"` // with defaults filled in
	// Latency is each successful operation's call time, from just before
	// Put/Get to its return, over all workers.
	Latency Summary `json:"latency"`
	// Ops counts the operations that returned without error (hits and
	// misses); failed ones are in Errors only. In a count-bounded run that
	// finished, Ops + Errors = Config.Ops.
	Ops    int64 `json:"ops"`
	Errors int64 `json:"errors"`
	// Misses counts GETs that found no value (get runs only). The preload
	// stores every key, so a run whose keys do not expire reports 0.
	Misses int64 `json:"misses"`
	// BadValues counts GET hits whose value was not the one stored for
	// the key (wrong length or key index).
	BadValues int64 `json:"bad_values"`
	// FirstError is the first failed operation's error, measured or not.
	FirstError string `json:"first_error,omitempty"`
	// Duration runs from the start of the measured phase until its last
	// operation returned; OpsPerSec is Ops / Duration.
	Duration  time.Duration `json:"duration_ns"`
	OpsPerSec float64       `json:"ops_per_sec"`
}

// RunCache measures target with cfg.Concurrency closed-loop workers. It
// calls target.Setup; for a get run stores every key once (unmeasured,
// with the same workers); runs the warm-up phase; then the measured phase;
// and closes the target. Each phase ends when its operation count is
// reached or its time is up (an operation started before the end finishes
// and counts); the workers of one phase all finish before the next starts.
// Each worker records its latencies in its own Histogram; they are merged
// at the end.
//
// It returns an error, together with the result so far, when setup or
// preload fails, more than cfg.MaxErrors operations fail, or cfg.Timeout
// (or ctx) ends the run early. Operations cut short by that end are not
// counted. Misses are not errors.
func RunCache(ctx context.Context, target CacheTarget, cfg CacheConfig) (res CacheResult, err error) {
	cfg, err = cfg.withDefaults()
	res = CacheResult{Target: target.Name(), Config: cfg}
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout,
		fmt.Errorf("cache run timeout (config Timeout %s)", cfg.Timeout))
	defer cancel()

	closeTarget, err := setUp(target, func() error { return target.Setup(ctx, cfg.Concurrency) })
	if err != nil {
		return res, err
	}
	defer closeTarget(&err)

	r := newCacheRun(target, cfg)
	if cfg.Op == CacheGet {
		if err := r.preload(ctx); err != nil {
			return res, err
		}
	}
	if cfg.WarmupOps > 0 || cfg.Warmup > 0 {
		if _, err := r.phase(ctx, cfg.WarmupOps, cfg.Warmup, false); err != nil {
			res.FirstError = r.firstError()
			return res, fmt.Errorf("bench: %s: warm-up: %w", target.Name(), err)
		}
	}
	start := time.Now()
	end, err := r.phase(ctx, cfg.Ops, cfg.Duration, true)
	res = r.result(res, end.Sub(start))
	if err != nil {
		return res, fmt.Errorf("bench: %s: %s: %w", target.Name(), cfg.Op, err)
	}
	return res, nil
}
