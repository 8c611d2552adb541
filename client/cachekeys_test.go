package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
)

// Expire and Persist over real QUIC, on a broker whose caches run on a
// test clock: Expire sets the expiry from now (rounded up to the
// millisecond) and Persist removes it, the version stays, a missing or
// expired key is not found and not created, and a TTL that is not
// positive is refused before sending.
func TestCacheExpirePersist(t *testing.T) {
	clk := testclock.New()
	tb := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"),
		testbroker.WithCacheStore(cache.StoreOptions{Clock: clk, SweepInterval: -1}))
	for _, jsonCache := range []bool{false, true} { // JSON requests on a binary session too
		t.Run(map[bool]string{false: "binary", true: "json"}[jsonCache], func(t *testing.T) {
			ctx := testCtx(t)
			kv := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: jsonCache}).Cache("default", "c")
			key := "session-" + t.Name()
			ver, err := kv.Put(ctx, key, []byte("v"))
			if err != nil {
				t.Fatal(err)
			}
			if found, err := kv.Expire(ctx, key, 1500*time.Microsecond); err != nil || !found {
				t.Fatalf("Expire: %v %v", found, err)
			}
			if d, has, found, err := kv.TTL(ctx, key); err != nil || !found || !has || d != 2*time.Millisecond {
				t.Fatalf("TTL after Expire 1.5ms: %v %v %v %v, want 2ms", d, has, found, err)
			}
			if found, err := kv.Expire(ctx, key, time.Hour); err != nil || !found {
				t.Fatalf("Expire 1h: %v %v", found, err)
			}
			clk.Advance(time.Minute)
			if d, _, _, err := kv.TTL(ctx, key); err != nil || d != 59*time.Minute {
				t.Fatalf("TTL a minute later: %v %v", d, err)
			}
			if found, err := kv.Persist(ctx, key); err != nil || !found {
				t.Fatalf("Persist: %v %v", found, err)
			}
			clk.Advance(2 * time.Hour)
			if _, has, found, err := kv.TTL(ctx, key); err != nil || !found || has {
				t.Fatalf("TTL after Persist: has=%v found=%v %v", has, found, err)
			}
			if it, err := kv.GetItem(ctx, key); err != nil || it.Version != ver {
				t.Fatalf("version after Expire/Persist: %+v %v, want %d", it, err, ver)
			}
			if _, err := kv.Put(ctx, key, []byte("w"), IfVersion(ver)); err != nil {
				t.Fatalf("compare-and-set on the version read before Expire: %v", err)
			}
			for _, ttl := range []time.Duration{0, -time.Second} {
				if found, err := kv.Expire(ctx, key, ttl); !errors.Is(err, errExpireTTL) || found {
					t.Fatalf("Expire %v: %v %v, want refused", ttl, found, err)
				}
			}
			if _, found, err := kv.Get(ctx, key); err != nil || !found {
				t.Fatalf("key after the refused Expire: %v %v", found, err)
			}

			if found, err := kv.Expire(ctx, key+"-missing", time.Hour); err != nil || found {
				t.Fatalf("Expire of a missing key: %v %v", found, err)
			}
			if found, err := kv.Persist(ctx, key+"-missing"); err != nil || found {
				t.Fatalf("Persist of a missing key: %v %v", found, err)
			}
			if _, found, _ := kv.Get(ctx, key+"-missing"); found {
				t.Fatal("Expire or Persist created a key")
			}
			if _, err := kv.Put(ctx, key+"-short", []byte("v"), WithTTL(time.Second)); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			if found, err := kv.Persist(ctx, key+"-short"); err != nil || found {
				t.Fatalf("Persist of an expired key: %v %v", found, err)
			}
			var se *ServerError
			if _, err := dial(t, tb, Options{}).Cache("default", "nope").Expire(ctx, "k", time.Second); !errors.As(err, &se) {
				t.Fatalf("Expire on an unknown cache: %v", err)
			}
		})
	}
}

// Scan pages and Keys iterate over every key in order, with a prefix,
// while other clients write other keys; an early break stops the
// iteration; an error ends it.
func TestCacheScanKeys(t *testing.T) {
	tb := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"))
	ctx := testCtx(t)
	c := dial(t, tb, Options{CacheConns: 2, CacheStreamsPerConn: 2})
	kv := c.Cache("default", "c")
	var want []string
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < 2500; i += 4 {
				k := fmt.Sprintf("user:%05d", i)
				if _, err := kv.Put(ctx, k, []byte("v")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range 2500 {
		want = append(want, fmt.Sprintf("user:%05d", i))
	}
	for _, k := range []string{"a", "user", "users", "zz"} {
		if _, err := kv.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}

	var got []string
	cursor, pages := "", 0
	for {
		keys, next, err := kv.Scan(ctx, "user:", cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 7 {
			t.Fatalf("page of %d keys over the limit 7", len(keys))
		}
		got, pages = append(got, keys...), pages+1
		if cursor = next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) || pages != 358 {
		t.Fatalf("Scan: %d keys in %d pages, want the %d in order in 358", len(got), pages, len(want))
	}
	if keys, next, err := kv.Scan(ctx, "", "", 0); err != nil || len(keys) != 100 || next != keys[99] || keys[0] != "a" {
		t.Fatalf("Scan with the default limit: %d keys, next %q, %v", len(keys), next, err)
	}

	// Keys, while other clients write and delete keys around these.
	stop := make(chan struct{})
	other := dial(t, tb, Options{}).Cache("default", "c")
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("user:%05d-tmp", i*37%2500)
			if _, err := other.Put(ctx, k, []byte("x")); err != nil {
				t.Error(err)
				return
			}
			if _, err := other.Delete(ctx, k); err != nil {
				t.Error(err)
				return
			}
		}
	})
	got = got[:0]
	for k, err := range kv.Keys(ctx, "user:") {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(k, "-tmp") {
			got = append(got, k)
		}
	}
	close(stop)
	wg.Wait()
	if !slices.Equal(got, want) {
		t.Fatalf("Keys: %d keys, want the %d in order, each once", len(got), len(want))
	}

	n := 0
	for range kv.Keys(ctx, "") {
		if n++; n == 3 {
			break
		}
	}
	var errs []error
	for k, err := range c.Cache("default", "nope").Keys(ctx, "") {
		if k != "" {
			t.Fatalf("key %q from an unknown cache", k)
		}
		errs = append(errs, err)
	}
	var se *ServerError
	if len(errs) != 1 || !errors.As(errs[0], &se) {
		t.Fatalf("Keys of an unknown cache: %v, want one ServerError", errs)
	}
}

// A durable cache whose log cannot store a change of expiry: ErrStorage,
// the expiry unchanged.
func TestCacheExpireStorage(t *testing.T) {
	tb, kv := durableCache(t)
	ctx := testCtx(t)
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	tb.Caches.Close() // its caches go on; their logs refuse writes
	if _, err := kv.Expire(ctx, "k", time.Hour); !errors.Is(err, ErrStorage) {
		t.Fatalf("Expire on a log that cannot write: %v, want ErrStorage", err)
	}
	if _, has, found, err := kv.TTL(ctx, "k"); err != nil || !found || has {
		t.Fatalf("TTL after the refused Expire: has=%v found=%v %v", has, found, err)
	}
	if keys, _, err := kv.Scan(ctx, "", "", 0); err != nil || !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("Scan of the cache: %q %v", keys, err)
	}
}

// Against a broker without the cache extension, Expire, Persist, Scan
// and Keys fail with ErrUnsupported without sending anything.
func TestCacheExpireScanUnsupported(t *testing.T) {
	kv, received := dialReferenceCache(t)
	ctx := testCtx(t)
	if _, _, err := kv.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Expire(ctx, "k", time.Second); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Expire: %v", err)
	}
	if _, err := kv.Persist(ctx, "k"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Persist: %v", err)
	}
	if _, _, err := kv.Scan(ctx, "", "", 10); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Scan: %v", err)
	}
	for _, err := range kv.Keys(ctx, "") {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Keys: %v", err)
		}
	}
	if _, _, err := kv.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after the refusals (same session): %v", err)
	}
	if got := received(); len(got) != 2 {
		t.Fatalf("the broker received %v, want only the two gets", got)
	}
}
