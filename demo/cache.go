package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/client"
)

// cacheTTL is the time to live of the demo's expiring entry.
const cacheTTL = 400 * time.Millisecond

// runCache: put/get, hit/miss, TTL with the remaining-time read, CAS, and
// a latency table. It uses the cache default/default/demo, which a
// development `felix serve` declares.
func runCache(ctx context.Context, e *env) error {
	const tenant, ns, name = "default", "default", "demo"
	if err := e.startBroker(needs{caches: []string{tenant + "/" + ns + "/" + name}}); err != nil {
		return err
	}
	e.stepf("Connecting a client as tenant %q and opening the cache %s/%s.", tenant, ns, name)
	c, err := e.dial(ctx, tenant, client.Options{CacheConns: 1, CacheStreamsPerConn: 1})
	if err != nil {
		return err
	}
	defer c.Close()
	k := c.Cache(ns, name)
	for _, key := range []string{"greeting", "no-such-key", "session:42", "stock:sku-1", "bench"} {
		if _, err := k.Delete(ctx, key); err != nil { // a rerun on an external broker starts clean
			return fmt.Errorf("delete %s: %w", key, err)
		}
	}
	e.notef("Cache requests travel on one long-lived QUIC stream, matched to replies by request id.")

	if err := cachePutGet(ctx, e, k); err != nil {
		return err
	}
	if err := cacheTTLStep(ctx, e, k); err != nil {
		return err
	}
	if err := cacheCAS(ctx, e, k); err != nil {
		return err
	}
	return cacheLatency(ctx, e, k)
}

func cachePutGet(ctx context.Context, e *env, k *client.Cache) error {
	e.stepf("Put and get: a hit, then a miss.")
	v, err := k.Put(ctx, "greeting", []byte("hello"))
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	e.notef("put greeting = \"hello\" (no TTL): version %d", v)
	val, found, err := k.Get(ctx, "greeting")
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	e.notef("get greeting → %q (found=%v)", val, found)
	e.check(found && string(val) == "hello", "get of a stored key is a hit with the stored value")
	ttl, hasExpiry, found, err := k.TTL(ctx, "greeting")
	if err != nil {
		return fmt.Errorf("ttl: %w", err)
	}
	e.notef("ttl greeting → found=%v, expires=%v", found, hasExpiry)
	e.check(found && !hasExpiry && ttl == 0, "an entry put without a TTL never expires")
	_, found, err = k.Get(ctx, "no-such-key")
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	e.notef("get no-such-key → found=%v", found)
	e.check(!found, "get of an absent key is a miss")
	return nil
}

func cacheTTLStep(ctx context.Context, e *env, k *client.Cache) error {
	e.stepf("Time to live: an entry that expires after %s.", cacheTTL)
	if _, err := k.Put(ctx, "session:42", []byte(`{"user":"ada"}`), client.WithTTL(cacheTTL)); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	ttl, hasExpiry, found, err := k.TTL(ctx, "session:42")
	if err != nil {
		return fmt.Errorf("ttl: %w", err)
	}
	e.notef("put session:42 with TTL %s; the TTL read (cache_ttl, a Felix extension) says %s left", cacheTTL, ttl)
	e.check(found && hasExpiry && ttl > 0 && ttl <= cacheTTL, "the remaining TTL is between 0 and %s", cacheTTL)
	_, found, err = k.Get(ctx, "session:42")
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	e.check(found, "before the TTL passes, get is a hit")
	wait := ttl + 100*time.Millisecond
	e.notef("waiting %s …", wait)
	if err := sleep(ctx, wait); err != nil {
		return err
	}
	_, found, err = k.Get(ctx, "session:42")
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	_, _, ttlFound, err := k.TTL(ctx, "session:42")
	if err != nil {
		return fmt.Errorf("ttl: %w", err)
	}
	e.check(!found && !ttlFound, "after the TTL, get is a miss and the TTL read finds no entry")
	return nil
}

func cacheCAS(ctx context.Context, e *env, k *client.Cache) error {
	e.stepf("Compare-and-set: two writers decrement the same stock counter.")
	v1, err := k.Put(ctx, "stock:sku-1", []byte("10"))
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	e.notef("put stock:sku-1 = 10: version %d", v1)
	e.notef("writer A and writer B both read 10 at version %d", v1)
	v2, err := k.Put(ctx, "stock:sku-1", []byte("9"), client.IfVersion(v1))
	if err != nil {
		return fmt.Errorf("writer A: %w", err)
	}
	e.notef("writer A: put 9 if version is %d → stored, version %d", v1, v2)
	_, err = k.Put(ctx, "stock:sku-1", []byte("9"), client.IfVersion(v1))
	var ce *client.CacheError
	refused := errors.Is(err, client.ErrConditionFailed) && errors.As(err, &ce)
	if err != nil && !refused {
		return fmt.Errorf("writer B: %w", err)
	}
	if refused {
		e.notef("writer B: put 9 if version is %d → refused, current version is %d", v1, ce.Version)
	}
	e.check(refused, "a write based on a stale version is refused (no lost update)")
	it, err := k.GetItem(ctx, "stock:sku-1")
	if err != nil {
		return fmt.Errorf("writer B: reread: %w", err)
	}
	v3, err := k.Put(ctx, "stock:sku-1", []byte("8"), client.IfVersion(it.Version))
	if err != nil {
		return fmt.Errorf("writer B: retry: %w", err)
	}
	e.notef("writer B: reread %s at version %d, put 8 if version is %d → stored, version %d", it.Value, it.Version, it.Version, v3)
	_, err = k.Put(ctx, "stock:sku-1", []byte("100"), client.IfAbsent())
	e.notef("put stock:sku-1 = 100 if absent → %v", errOrStored(err))
	e.check(errors.Is(err, client.ErrConditionFailed), "put-if-absent on an existing key is refused")
	val, _, err := k.Get(ctx, "stock:sku-1")
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	e.check(string(val) == "8", "the counter is 8 after two decrements from 10 (got %s)", val)
	return nil
}

func errOrStored(err error) string {
	if err == nil {
		return "stored"
	}
	return "refused (" + err.Error() + ")"
}

// cacheLatency measures put, get (hit) and get (miss) one at a time.
func cacheLatency(ctx context.Context, e *env, k *client.Cache) error {
	warmup, samples := 200, 2000
	if e.opts.Quick {
		warmup, samples = 20, 200
	}
	payloads := []int{0, 256, 1024, 4096}
	e.stepf("Latency: %d sequential requests per operation and payload (after %d warm-up), one client, one stream.", samples, warmup)
	e.notef("%-8s %-8s %10s %10s %10s %12s", "payload", "op", "p50", "p99", "p999", "ops/s")
	allOK := true
	for _, size := range payloads {
		value := bytes.Repeat([]byte{'x'}, size)
		ops := []struct {
			name string
			do   func() error
		}{
			{"put", func() error { _, err := k.Put(ctx, "bench", value); return err }},
			{"get hit", func() error {
				v, found, err := k.Get(ctx, "bench")
				if err == nil && (!found || len(v) != size) {
					allOK = false
				}
				return err
			}},
			{"get miss", func() error {
				_, found, err := k.Get(ctx, "no-such-key")
				if found {
					allOK = false
				}
				return err
			}},
		}
		for _, op := range ops {
			h := bench.NewHistogram()
			var elapsed time.Duration
			for i := range warmup + samples {
				t0 := time.Now()
				if err := op.do(); err != nil {
					return fmt.Errorf("%s %d B: %w", op.name, size, err)
				}
				if i >= warmup {
					d := time.Since(t0)
					h.Record(d)
					elapsed += d
				}
			}
			s := h.Summary()
			e.notef("%-8s %-8s %10s %10s %10s %12.0f", fmt.Sprintf("%d B", size), op.name,
				fmtLatency(s.P50), fmtLatency(s.P99), fmtLatency(s.P999), float64(samples)/elapsed.Seconds())
		}
	}
	e.check(allOK, "every get hit returned the full value and every get miss found nothing")
	e.notef("(one request at a time: ops/s is 1/latency; the cache serves many clients in parallel)")
	return nil
}

// fmtLatency formats d in microseconds, or in milliseconds from 10 ms.
func fmtLatency(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
