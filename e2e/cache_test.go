package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
)

// bothEncodings runs a cache test with binary GET/PUT frames (the default
// when the broker grants them) and with JSON only (Options.JSONCache).
func bothEncodings(t *testing.T, test func(t *testing.T, jsonCache bool)) {
	for _, jsonCache := range []bool{false, true} {
		t.Run(map[bool]string{false: "binary", true: "json"}[jsonCache], func(t *testing.T) { test(t, jsonCache) })
	}
}

func startCache(t *testing.T, jsonCache bool, clock cache.Clock, cfg cache.Config) (*testbroker.Broker, *client.Cache) {
	t.Helper()
	opts := []testbroker.Option{testbroker.WithCaches(cfg, "default/default/c")}
	if clock != nil {
		opts = append(opts, testbroker.WithCacheStore(cache.StoreOptions{Clock: clock, SweepInterval: -1}))
	}
	tb := testbroker.Start(t, opts...)
	c := dial(t, tb, client.Options{CacheConns: 1, CacheStreamsPerConn: 2, JSONCache: jsonCache})
	return tb, c.Cache("default", "c")
}

func TestCacheOperations(t *testing.T) { bothEncodings(t, testCacheOperations) }

func testCacheOperations(t *testing.T, jsonCache bool) {
	_, kv := startCache(t, jsonCache, nil, cache.Config{})
	ctx := context.Background()
	v1, err := kv.Put(ctx, "k", []byte("one"))
	if err != nil || v1 == 0 {
		t.Fatalf("put: %d %v", v1, err)
	}
	it, err := kv.GetItem(ctx, "k")
	if err != nil || !it.Found || string(it.Value) != "one" || it.Version != v1 {
		t.Fatalf("get: %+v %v", it, err)
	}
	if _, err := kv.Put(ctx, "k", []byte("x"), client.IfAbsent()); !errors.Is(err, client.ErrConditionFailed) {
		t.Fatalf("put-if-absent on existing key: %v", err)
	}
	v2, err := kv.Put(ctx, "k", []byte("two"), client.IfVersion(v1))
	if err != nil || v2 <= v1 {
		t.Fatalf("cas: %d %v", v2, err)
	}
	var ce *client.CacheError
	if _, err := kv.Put(ctx, "k", []byte("x"), client.IfVersion(v1)); !errors.As(err, &ce) || ce.Version != v2 {
		t.Fatalf("stale cas: %v", err)
	}
	if _, has, found, err := kv.TTL(ctx, "k"); err != nil || has || !found {
		t.Fatalf("ttl of a non-expiring key: %v %v %v", has, found, err)
	}
	kv.Put(ctx, "t", []byte("x"), client.WithTTL(time.Hour))
	if ttl, has, found, err := kv.TTL(ctx, "t"); err != nil || !has || !found || ttl <= 59*time.Minute {
		t.Fatalf("ttl: %v %v %v %v", ttl, has, found, err)
	}
	items, err := kv.MGet(ctx, []string{"k", "missing", "t"})
	if err != nil || len(items) != 3 || string(items[0].Value) != "two" || items[1].Found || !items[2].Found {
		t.Fatalf("mget: %+v %v", items, err)
	}
	if ok, err := kv.Delete(ctx, "k"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, found, _ := kv.Get(ctx, "k"); found {
		t.Fatal("deleted key still found")
	}
	if v, found, err := kv.Get(ctx, "empty-missing"); found || v != nil || err != nil {
		t.Fatalf("miss: %v %v %v", v, found, err)
	}
	kv.Put(ctx, "empty", nil)
	if v, found, err := kv.Get(ctx, "empty"); !found || len(v) != 0 || err != nil {
		t.Fatalf("empty value: %q %v %v", v, found, err)
	}
}

// TTL expiry with an injected clock: no sleeps.
func TestCacheTTLExpiryInjectedClock(t *testing.T) { bothEncodings(t, testCacheTTLExpiryInjectedClock) }

func testCacheTTLExpiryInjectedClock(t *testing.T, jsonCache bool) {
	clock := testclock.New()
	tb, kv := startCache(t, jsonCache, clock, cache.Config{})
	ctx := context.Background()
	kv.Put(ctx, "short", []byte("x"), client.WithTTL(1500*time.Millisecond))
	kv.Put(ctx, "long", []byte("y"), client.WithTTL(time.Hour))
	kv.Put(ctx, "forever", []byte("z"))
	if _, found, _ := kv.Get(ctx, "short"); !found {
		t.Fatal("expired too early")
	}
	clock.Advance(1499 * time.Millisecond)
	if _, found, _ := kv.Get(ctx, "short"); !found {
		t.Fatal("expired 1 ms early")
	}
	clock.Advance(2 * time.Millisecond)
	if _, found, _ := kv.Get(ctx, "short"); found {
		t.Fatal("not expired after its TTL")
	}
	clock.Advance(2 * time.Hour)
	// The sweep frees the expired entry without any read of it.
	c, _ := tb.Caches.Get(cache.Scope{Tenant: "default", Namespace: "default", Cache: "c"})
	if n := c.Sweep(100); n != 1 {
		t.Fatalf("sweep removed %d, want 1 (long)", n)
	}
	if _, found, _ := kv.Get(ctx, "forever"); !found {
		t.Fatal("entry without TTL expired")
	}
	if st := c.Stats(); st.Expirations != 2 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// 10,000 requests in flight on two streams are each answered with their
// own reply (the right request id).
func TestCacheTenThousandPipelined(t *testing.T) { bothEncodings(t, testCacheTenThousandPipelined) }

func testCacheTenThousandPipelined(t *testing.T, jsonCache bool) {
	tb, kv := startCache(t, jsonCache, nil, cache.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 10_000
	run := func(op func(i int) error) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				if err := op(i); err != nil {
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	run(func(i int) error {
		_, err := kv.Put(ctx, "key-"+strconv.Itoa(i), []byte("value-"+strconv.Itoa(i)))
		return err
	})
	run(func(i int) error {
		v, found, err := kv.Get(ctx, "key-"+strconv.Itoa(i))
		if err != nil || !found || string(v) != "value-"+strconv.Itoa(i) {
			return fmt.Errorf("get %d: %q %v %v", i, v, found, err)
		}
		return nil
	})
	c, _ := tb.Caches.Get(cache.Scope{Tenant: "default", Namespace: "default", Cache: "c"})
	if st := c.Stats(); st.Puts != n || st.Hits != n {
		t.Fatalf("stats %+v", st)
	}
}

// Compare-and-set through the SDK: every successful CAS is observed once.
func TestCacheCASContention(t *testing.T) { bothEncodings(t, testCacheCASContention) }

func testCacheCASContention(t *testing.T, jsonCache bool) {
	_, kv := startCache(t, jsonCache, nil, cache.Config{})
	ctx := context.Background()
	const workers, each = 8, 100
	kv.Put(ctx, "counter", []byte("0"))
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				it, err := kv.GetItem(ctx, "counter")
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(string(it.Value))
				v, err := kv.Put(ctx, "counter", []byte(strconv.Itoa(n+1)), client.IfVersion(it.Version))
				if errors.Is(err, client.ErrConditionFailed) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[v] {
					t.Errorf("version %d returned twice", v)
				}
				seen[v] = true
				mu.Unlock()
				done++
			}
		})
	}
	wg.Wait()
	v, _, _ := kv.Get(ctx, "counter")
	if string(v) != strconv.Itoa(workers*each) || len(seen) != workers*each {
		t.Fatalf("counter %s, %d distinct successful CAS", v, len(seen))
	}
}

func TestCacheLimitsAndErrors(t *testing.T) { bothEncodings(t, testCacheLimitsAndErrors) }

func testCacheLimitsAndErrors(t *testing.T, jsonCache bool) {
	tb, kv := startCache(t, jsonCache, nil, cache.Config{MaxBytes: 4 << 20})
	ctx := context.Background()
	if _, err := kv.Put(ctx, "huge", make([]byte, 17<<20)); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("17 MiB value: %v", err)
	}
	if _, err := kv.Put(ctx, "big", make([]byte, 5<<20)); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("over capacity: %v", err)
	}
	if _, err := kv.Put(ctx, "fits", make([]byte, 3<<20)); err != nil {
		t.Fatalf("3 MiB value: %v", err)
	}
	c := dial(t, tb, client.Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: jsonCache})
	var se *client.ServerError
	if _, _, err := c.Cache("default", "nope").Get(ctx, "k"); !errors.As(err, &se) || se.Message != "cache scope not found: default/default/nope" {
		t.Fatalf("unknown cache: %v", err)
	}
	// The same stream keeps working after the error.
	if _, found, err := c.Cache("default", "c").Get(ctx, "fits"); err != nil || !found {
		t.Fatalf("after an error: %v %v", found, err)
	}
}
