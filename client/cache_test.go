package client

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
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
		math.MaxInt64: uint64(math.MaxInt64/time.Millisecond) + 1, // no overflow to a negative TTL
	} {
		var m wire.CachePut
		WithTTL(d)(&m)
		if m.TTLMs == nil || *m.TTLMs != want {
			t.Errorf("WithTTL(%v) = %v ms, want %d", d, m.TTLMs, want)
		}
	}
}

// A version read before a broker restart does not match an entry written
// after it (the restarted broker's caches start their versions above the
// old ones), so a compare-and-set across a restart fails instead of
// silently overwriting another client's write. Requests after the restart
// reconnect; one sent before the client noticed the restart may fail with
// ErrDisconnected, nothing else.
func TestCacheCASAcrossRestart(t *testing.T) {
	tb := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"))
	for _, jsonCache := range []bool{false, true} {
		t.Run(map[bool]string{false: "binary", true: "json"}[jsonCache], func(t *testing.T) {
			a := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: jsonCache})
			ctx := testCtx(t)
			key := "k-" + t.Name()
			read, err := a.Cache("default", "c").Put(ctx, key, []byte("a's"))
			if err != nil {
				t.Fatal(err)
			}
			tb.Restart()
			b := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: jsonCache})
			if _, err := b.Cache("default", "c").Put(ctx, key, []byte("b's")); err != nil {
				t.Fatal(err)
			}
			var casErr error
			for {
				_, casErr = a.Cache("default", "c").Put(ctx, key, []byte("a's update"), IfVersion(read))
				if !errors.Is(casErr, ErrDisconnected) {
					break
				}
			}
			if !errors.Is(casErr, ErrConditionFailed) {
				t.Fatalf("CAS at version %d read before the restart: %v, want ErrConditionFailed", read, casErr)
			}
			if v, _, err := b.Cache("default", "c").Get(ctx, key); err != nil || string(v) != "b's" {
				t.Fatalf("after the stale CAS: %q %v", v, err)
			}
		})
	}
}

// A reply the frame limit cannot carry (a value stored from a binary put,
// read as base64 JSON; an mget of large values) fails that request with
// ErrValueTooLarge, instead of the broker sending a frame the client must
// reject, which lost the session and every request in flight on it.
func TestCacheReplyOverFrameLimit(t *testing.T) {
	const limit = 1 << 20
	tb := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: limit}))
	bin := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, MaxFrameBytes: limit})
	ctx := testCtx(t)
	big := make([]byte, limit*7/8) // fits a binary frame, not its base64
	if _, err := bin.Cache("default", "c").Put(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if _, err := bin.Cache("default", "c").Put(ctx, "half", big[:limit/2]); err != nil {
		t.Fatal(err)
	}
	for _, jsonCache := range []bool{false, true} {
		t.Run(map[bool]string{false: "binary", true: "json"}[jsonCache], func(t *testing.T) {
			c := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, MaxFrameBytes: limit, JSONCache: jsonCache})
			kv := c.Cache("default", "c")
			if v, found, err := kv.Get(ctx, "half"); err != nil || !found || len(v) != limit/2 {
				t.Fatalf("get half: %d %v %v", len(v), found, err)
			}
			s := c.cacheLanes[0].live()
			v, found, err := kv.Get(ctx, "big")
			if jsonCache {
				if !errors.Is(err, ErrValueTooLarge) {
					t.Fatalf("JSON get of a value over the frame limit in base64: %v, want ErrValueTooLarge", err)
				}
			} else if err != nil || !found || len(v) != len(big) {
				t.Fatalf("binary get: %d %v %v", len(v), found, err)
			}
			if _, err := kv.MGet(ctx, []string{"half", "half"}); !errors.Is(err, ErrValueTooLarge) {
				t.Fatalf("mget over the frame limit: %v, want ErrValueTooLarge", err)
			}
			if items, err := kv.MGet(ctx, []string{"half", "nope"}); err != nil || len(items[0].Value) != limit/2 || items[1].Found {
				t.Fatalf("mget under the limit: %v", err)
			}
			if c.cacheLanes[0].live() != s {
				t.Fatal("the session did not survive")
			}
		})
	}
}
