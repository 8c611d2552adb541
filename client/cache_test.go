package client

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// The cache API behaves the same over binary GET/PUT frames (granted by the
// broker, the default) and over JSON (Options.JSONCache); the other cache
// requests stay JSON on a binary session.
func TestCacheBothEncodings(t *testing.T) {
	tb := startBroker(t, testbroker.WithCaches(cache.Config{MaxBytes: 1 << 20}, "default/default/c"))
	for _, jsonCache := range []bool{false, true} {
		t.Run(map[bool]string{false: "binary", true: "json"}[jsonCache], func(t *testing.T) {
			c := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: jsonCache})
			ctx := testCtx(t)
			kv := c.Cache("default", "c")
			key := "k-" + t.Name()
			v1, err := kv.Put(ctx, key, []byte("one"))
			if err != nil || v1 == 0 {
				t.Fatalf("put: %d %v", v1, err)
			}
			s := c.cacheLanes[0].live()
			if s == nil || s.bin == jsonCache {
				t.Fatalf("session binary = %v with JSONCache %v", s != nil && s.bin, jsonCache)
			}
			if granted := c.ServerFlags()&wire.CapCacheBin != 0; granted == jsonCache {
				t.Fatalf("CapCacheBin granted = %v with JSONCache %v", granted, jsonCache)
			}
			if it, err := kv.GetItem(ctx, key); err != nil || !it.Found || string(it.Value) != "one" || it.Version != v1 {
				t.Fatalf("get: %+v %v", it, err)
			}
			if v, found, err := kv.Get(ctx, "missing"); err != nil || found || v != nil {
				t.Fatalf("miss: %q %v %v", v, found, err)
			}
			if _, err := kv.Put(ctx, key, []byte("x"), IfAbsent()); !errors.Is(err, ErrConditionFailed) {
				t.Fatalf("if absent: %v", err)
			}
			var ce *CacheError
			if _, err := kv.Put(ctx, key, []byte("x"), IfVersion(v1+100)); !errors.As(err, &ce) || ce.Version != v1 {
				t.Fatalf("stale if_version: %v", err)
			}
			v2, err := kv.Put(ctx, key, nil, IfVersion(v1), WithTTL(0))
			if err != nil || v2 <= v1 {
				t.Fatalf("cas with ttl 0: %d %v", v2, err)
			}
			if _, found, err := kv.Get(ctx, key); err != nil || found {
				t.Fatalf("expired at once, yet found=%v (%v)", found, err)
			}
			if _, err := kv.Put(ctx, "empty", nil); err != nil {
				t.Fatal(err)
			}
			if v, found, err := kv.Get(ctx, "empty"); err != nil || !found || v == nil || len(v) != 0 {
				t.Fatalf("empty value: %q %v %v", v, found, err)
			}
			if _, err := kv.Put(ctx, "big", make([]byte, 2<<20)); !errors.Is(err, ErrValueTooLarge) {
				t.Fatalf("over capacity: %v", err)
			}
			var se *ServerError
			if _, _, err := c.Cache("default", "nope").Get(ctx, "k"); !errors.As(err, &se) {
				t.Fatalf("unknown cache: %v", err)
			}
			// A key too long for a binary name goes as JSON.
			long := strings.Repeat("L", 70_000)
			if _, err := kv.Put(ctx, long, []byte("v")); err != nil {
				t.Fatalf("long key put: %v", err)
			}
			if v, found, err := kv.Get(ctx, long); err != nil || !found || string(v) != "v" {
				t.Fatalf("long key get: %q %v %v", v, found, err)
			}
			// JSON-only requests share the session.
			if ok, err := kv.Delete(ctx, "empty"); err != nil || !ok {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if items, err := kv.MGet(ctx, []string{"empty", long}); err != nil || items[0].Found || !items[1].Found {
				t.Fatalf("mget: %+v %v", items, err)
			}
			if c.cacheLanes[0].live() != s {
				t.Fatal("the session did not survive the errors")
			}
		})
	}
}

func TestWithTTLRoundsUpToMilliseconds(t *testing.T) {
	for d, want := range map[time.Duration]uint64{
		-time.Second: 0, 0: 0, time.Microsecond: 1, 500 * time.Microsecond: 1,
		time.Millisecond: 1, 1500 * time.Microsecond: 2, 2 * time.Second: 2000,
	} {
		var m wire.CachePut
		WithTTL(d)(&m)
		if m.TTLMs == nil || *m.TTLMs != want {
			t.Errorf("WithTTL(%v) = %v ms, want %d", d, m.TTLMs, want)
		}
	}
}
