package client

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// Incr over real QUIC: a missing key starts at 0, the value is decimal
// text that Get reads and Put may set, WithTTL applies to a key it
// creates only, and the broker's refusals are typed errors.
func TestCacheIncr(t *testing.T) {
	tb := startBroker(t, testbroker.WithCaches(cache.Config{MaxBytes: 1 << 20}, "default/default/c"))
	for _, jsonCache := range []bool{false, true} { // incr is JSON on a binary session too
		t.Run(map[bool]string{false: "binary", true: "json"}[jsonCache], func(t *testing.T) {
			c := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1, JSONCache: jsonCache})
			ctx := testCtx(t)
			kv := c.Cache("default", "c")
			key := "n-" + t.Name()
			if v, err := kv.Incr(ctx, key, 1); err != nil || v != 1 {
				t.Fatalf("first Incr: %d %v", v, err)
			}
			if v, err := kv.Incr(ctx, key, -43); err != nil || v != -42 {
				t.Fatalf("Incr -43: %d %v", v, err)
			}
			if v, found, err := kv.Get(ctx, key); err != nil || !found || string(v) != "-42" {
				t.Fatalf("Get after Incr: %q %v %v", v, found, err)
			}
			if _, err := kv.Put(ctx, key, []byte("10")); err != nil {
				t.Fatal(err)
			}
			if v, err := kv.Incr(ctx, key, 5, WithTTL(time.Hour)); err != nil || v != 15 {
				t.Fatalf("Put 10 then Incr 5: %d %v", v, err)
			}
			if _, has, found, err := kv.TTL(ctx, key); err != nil || !found || has {
				t.Fatalf("an existing key gained a TTL: has=%v found=%v %v", has, found, err)
			}
			ttlKey := key + "-ttl"
			if v, err := kv.Incr(ctx, ttlKey, 7, WithTTL(time.Hour)); err != nil || v != 7 {
				t.Fatalf("Incr creating with a TTL: %d %v", v, err)
			}
			if d, has, found, err := kv.TTL(ctx, ttlKey); err != nil || !found || !has || d > time.Hour || d < 50*time.Minute {
				t.Fatalf("TTL of a key Incr created: %v %v %v %v", d, has, found, err)
			}

			if _, err := kv.Put(ctx, "name", []byte("felix")); err != nil {
				t.Fatal(err)
			}
			_, err := kv.Incr(ctx, "name", 1)
			var ce *CacheError
			if !errors.Is(err, ErrNotInteger) || !errors.As(err, &ce) || ce.Code != wire.CacheCodeNotInteger {
				t.Fatalf("Incr of a non-integer: %v, want a CacheError matching ErrNotInteger", err)
			}
			if _, err := kv.Incr(ctx, key, math.MaxInt64); !errors.Is(err, ErrOverflow) || errors.Is(err, ErrNotInteger) {
				t.Fatalf("Incr past MaxInt64: %v, want ErrOverflow", err)
			}
			if v, _, err := kv.Get(ctx, key); err != nil || string(v) != "15" {
				t.Fatalf("value after the refused increments: %q %v", v, err)
			}
			if _, err := kv.Incr(ctx, key, 1, IfAbsent()); !errors.Is(err, errIncrCondition) {
				t.Fatalf("Incr with IfAbsent: %v, want it refused", err)
			}
			var se *ServerError
			if _, err := c.Cache("default", "nope").Incr(ctx, "k", 1); !errors.As(err, &se) {
				t.Fatalf("Incr on an unknown cache: %v", err)
			}
			// The session survived every refusal.
			if v, err := kv.Incr(ctx, key, 0); err != nil || v != 15 {
				t.Fatalf("Incr 0 after the refusals: %d %v", v, err)
			}
		})
	}
}

// Many clients, each with concurrent callers pipelining on its streams,
// increment the same keys: no increment is lost.
func TestCacheIncrConcurrentClients(t *testing.T) {
	tb := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"))
	ctx := testCtx(t)
	const (
		clients = 6
		callers = 4
		each    = 60
	)
	var wg sync.WaitGroup
	for i := range clients {
		c := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 2})
		kv := c.Cache("default", "c")
		for g := range callers {
			wg.Go(func() {
				for j := range each {
					key, delta := "even", int64(2)
					if j%2 == 1 {
						key, delta = "odd", int64(-(i + g + 1))
					}
					if _, err := kv.Incr(ctx, key, delta); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var odd int64
	for i := range clients {
		for g := range callers {
			odd -= int64(each/2) * int64(i+g+1)
		}
	}
	kv := dial(t, tb, Options{}).Cache("default", "c")
	if v, err := kv.Incr(ctx, "even", 0); err != nil || v != clients*callers*each {
		t.Fatalf("even = %d %v, want %d", v, err, clients*callers*each)
	}
	if v, err := kv.Incr(ctx, "odd", 0); err != nil || v != odd {
		t.Fatalf("odd = %d %v, want %d", v, err, odd)
	}
}

// A durable cache whose log cannot store an increment: ErrStorage, the
// count unchanged.
func TestCacheIncrStorage(t *testing.T) {
	tb, kv := durableCache(t)
	ctx := testCtx(t)
	if v, err := kv.Incr(ctx, "n", 3); err != nil || v != 3 {
		t.Fatalf("Incr: %d %v", v, err)
	}
	tb.Caches.Close() // its caches go on; their logs refuse writes
	if _, err := kv.Incr(ctx, "n", 1); !errors.Is(err, ErrStorage) {
		t.Fatalf("Incr on a log that cannot write: %v, want ErrStorage", err)
	}
	if v, _, err := kv.Get(ctx, "n"); err != nil || string(v) != "3" {
		t.Fatalf("value after the refused Incr: %q %v", v, err)
	}
}

// Against a broker that did not grant the cache extension (the
// reference), Incr fails with ErrUnsupported without sending anything: a
// broker that does not know cache_incr would reset the stream and fail
// every request in flight on it.
func TestCacheIncrUnsupported(t *testing.T) {
	kv, received := dialReferenceCache(t)
	ctx := testCtx(t)
	if _, found, err := kv.Get(ctx, "k"); err != nil || found {
		t.Fatalf("Get: %v %v", found, err)
	}
	if _, err := kv.Incr(ctx, "k", 1); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Incr without the extension: %v, want ErrUnsupported", err)
	}
	if _, _, err := kv.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after the refused Incr (same session): %v", err)
	}
	if got := received(); len(got) != 2 || got[0] != wire.TypeCacheGet || got[1] != wire.TypeCacheGet {
		t.Fatalf("the broker received %v, want only the two gets", got)
	}
}

// dialFakeCacheBroker returns a handle on cache default/default/c of a
// fake broker that grants flags at auth and answers each message of the
// cache stream with serve's reply; when serve says !ok (or a message does
// not decode) it resets the stream, as the reference does for an unknown
// message.
func dialFakeCacheBroker(t *testing.T, flags uint16, serve func(m wire.Message) (reply wire.Message, ok bool)) *Cache {
	t.Helper()
	authOK, err := wire.AppendMessageFrame(nil, &wire.AuthOK{ServerFlags: flags})
	if err != nil {
		t.Fatal(err)
	}
	addr := startFakeBroker(t, transport.Options{}, func(ctx context.Context, qc *quic.Conn, str *quic.Stream) {
		defer str.CancelRead(0)
		r := wire.NewReader(str, 1<<20)
		if _, err := r.ReadFrame(); err != nil { // auth
			return
		}
		if _, err := str.Write(authOK); err != nil {
			return
		}
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			m, err := wire.DecodeMessage(f.Payload)
			var reply wire.Message
			ok := err == nil
			if ok {
				reply, ok = serve(m)
			}
			if !ok {
				str.CancelWrite(1)
				return
			}
			b, err := wire.AppendMessageFrame(nil, reply)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := str.Write(b); err != nil {
				return
			}
		}
	})
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(testCtx(t), addr, Options{TLS: tlsConf, CacheConns: 1, CacheStreamsPerConn: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.Cache("default", "c")
}

// dialReferenceCache returns a handle on a cache of a fake broker that,
// as the reference, grants no extension, answers cache_get with a miss
// and resets the stream on any other message; received lists the message
// types it got.
func dialReferenceCache(t *testing.T) (kv *Cache, received func() []wire.MsgType) {
	var mu sync.Mutex
	var got []wire.MsgType
	kv = dialFakeCacheBroker(t, wire.KnownFlags, func(m wire.Message) (wire.Message, bool) {
		mu.Lock()
		got = append(got, m.Type())
		mu.Unlock()
		g, ok := m.(*wire.CacheGet)
		if !ok {
			return nil, false // the reference: an unknown message resets the stream
		}
		return &wire.CacheValue{TenantID: g.TenantID, Namespace: g.Namespace, Cache: g.Cache, Key: g.Key, RequestID: g.RequestID}, true
	})
	return kv, func() []wire.MsgType {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// durableCache starts a broker with the durable cache default/default/kept
// and returns a handle on it.
func durableCache(t *testing.T) (*testbroker.Broker, *Cache) {
	tb := startBroker(t)
	scope := cache.Scope{Tenant: "default", Namespace: "default", Cache: "kept"}
	if _, err := tb.Caches.CreateDurable(scope, cache.Config{}, cache.DurableOptions{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return tb, dial(t, tb, Options{}).Cache("default", "kept")
}
