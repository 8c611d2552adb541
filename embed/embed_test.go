package embed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
)

// A durable cache of an embedded broker keeps what the SDK wrote across a
// restart on the same data directory (values, versions, deletes), in the
// directory felix serve --durable-cache uses; an in-memory cache of the
// same broker starts empty.
func TestDurableCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{
		DataDir:       dir,
		Sync:          commitlog.SyncAlways,
		DurableCaches: []string{"acme/web/sessions"},
		Caches:        []string{"acme/web/scratch"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Dial(ctx, client.Options{TenantID: "acme"})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	kv := c.Cache("web", "sessions")
	ver, err := kv.Put(ctx, "user:1", []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ok, err := kv.Delete(ctx, "gone"); !ok || err != nil {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
	if _, err := c.Cache("web", "scratch").Put(ctx, "tmp", []byte("y")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(commitlog.DirFor(dir, "caches", "acme", "web", "sessions")); err != nil {
		t.Fatalf("the cache's log directory: %v", err)
	}

	b, err = Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err = b.Dial(ctx, client.Options{TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv = c.Cache("web", "sessions")
	it, err := kv.GetItem(ctx, "user:1")
	if err != nil || !it.Found || string(it.Value) != "alice" || it.Version != ver {
		t.Fatalf("user:1 after restart = %q@%d found=%v, %v; want alice@%d", it.Value, it.Version, it.Found, err, ver)
	}
	if _, ok, err := kv.Get(ctx, "gone"); ok || err != nil {
		t.Fatalf("deleted key after restart: found %v, %v", ok, err)
	}
	if _, ok, err := c.Cache("web", "scratch").Get(ctx, "tmp"); ok || err != nil {
		t.Fatalf("in-memory cache after restart: found %v, %v; want empty", ok, err)
	}
	if _, err := kv.Put(ctx, "user:1", []byte("alice v2"), client.IfVersion(ver)); err != nil {
		t.Fatalf("compare-and-set with the version read before the restart: %v", err)
	}
}

// A cache declared both in memory and durable is refused, and nothing is
// left open or served.
func TestCacheDeclaredTwiceRefused(t *testing.T) {
	b, err := Start(Options{DataDir: t.TempDir(), DurableCaches: []string{"a/b/c"}, Caches: []string{"a/b/c"}})
	if err == nil {
		b.Close()
		t.Fatal("Start accepted a cache both in Caches and DurableCaches")
	}
	if !strings.Contains(err.Error(), "a/b/c") {
		t.Fatalf("error %q does not name the cache", err)
	}
	if _, err := Start(Options{DurableCaches: []string{"a/b"}}); err == nil {
		t.Fatal("Start accepted a malformed durable cache name")
	}
}

// Options.CacheStore reaches the broker's caches: an embedded broker's
// caches stay within its MaxTotalBytes, and a value larger than it is
// refused as too large.
func TestCacheStoreBudget(t *testing.T) {
	b, err := Start(Options{Caches: []string{"acme/web/a"}, CacheStore: cache.StoreOptions{MaxTotalBytes: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := b.Dial(ctx, client.Options{TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv := c.Cache("web", "a")
	for i := range 10 {
		if _, err := kv.Put(ctx, fmt.Sprint("k", i), make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if used, limit := b.caches.MemoryBytes(); limit != 4096 || used > limit {
		t.Fatalf("caches hold %d bytes, bound %d; want at most 4096", used, limit)
	}
	if _, err := kv.Put(ctx, "big", make([]byte, 5000)); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("Put of a value over the bound: %v, want ErrValueTooLarge", err)
	}
}
