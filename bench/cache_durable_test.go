package bench

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
)

// dirBytes is the bytes of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With AppendOnly, redis-server logs every write to an AOF fsynced every
// second (Redis's appendfsync everysec), in its temporary directory, which
// stop removes; RDB snapshots stay off.
func TestStartRedisAppendOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	addr, stop, err := StartRedis(ctx, RedisServerOptions{AppendOnly: true})
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("redis-server is not installed (run scripts/peers.sh install redis): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for param, want := range map[string]string{"appendonly": "yes", "appendfsync": "everysec", "save": ""} {
		got, err := c.ConfigGet(ctx, param).Result()
		if err != nil || got[param] != want {
			t.Errorf("CONFIG GET %s = %v, %v; want %q", param, got, err, want)
		}
	}
	dirs, err := c.ConfigGet(ctx, "dir").Result()
	if err != nil {
		t.Fatal(err)
	}
	dir := dirs["dir"]
	if !strings.Contains(dir, "felix-bench-redis-") {
		t.Fatalf("redis dir %q is not the temporary one", dir)
	}
	before := dirBytes(t, dir)
	value := strings.Repeat("v", 4096)
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(ctx, k, value, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Under appendfsync everysec Redis may hold its AOF write back for up
	// to 2 s while the previous second's fsync is still running (a busy
	// disk), replying before the write: wait for it, well past that.
	deadline := time.Now().Add(10 * time.Second)
	for {
		grown := dirBytes(t, dir) - before
		if grown >= 3*4096 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the AOF grew by %d bytes within 10 s of 3 SETs of 4 KiB", grown)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("redis dir %s left behind: %v", dir, err)
	}
}

// An embedded benchmark broker with DurableCache logs BenchCache's writes
// in its temporary data dir (where felix serve --durable-cache would), and
// Stop removes it.
func TestEmbeddedFelixDurableCache(t *testing.T) {
	fb, err := StartEmbeddedFelixWith(broker.Options{}, BenchBrokerOptions{DurableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Stop()
	if fb.DataDir == "" {
		t.Fatal("no data dir for a durable cache")
	}
	target := &FelixCacheTarget{Addr: fb.Addr, TLS: fb.TLS, Label: "felix-durable"}
	const ops, size = 300, 512
	res, err := RunCache(context.Background(), target, CacheConfig{Op: CachePut, Concurrency: 4, Keys: 50, ValueSize: size, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target != "felix-durable" || res.Errors != 0 || res.Ops != ops {
		t.Fatalf("put: target %q, %d ops, %d errors (first %q)", res.Target, res.Ops, res.Errors, res.FirstError)
	}
	logDir := commitlog.DirFor(fb.DataDir, "caches", BenchCache.Tenant, BenchCache.Namespace, BenchCache.Cache)
	if n := dirBytes(t, logDir); n < ops*size {
		t.Errorf("the cache's log holds %d bytes after %d puts of %d bytes", n, ops, size)
	}
	if err := fb.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fb.DataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s left behind: %v", fb.DataDir, err)
	}
}
