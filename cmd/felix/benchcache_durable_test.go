package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/bench"
)

// felix bench cache --durable measures a durable Felix cache against Redis
// with an AOF (appendfsync everysec), labelled felix-durable and
// redis-aof; the ratios compare them.
func TestBenchCacheDurableCompareRedis(t *testing.T) {
	out, err := runCLI(t, "bench", "cache", "--broker", "embedded", "--durable", "--compare", "redis", "--op", "put",
		"--concurrency", "2", "--keys", "200", "--duration", "150ms", "--warmup", "50ms", "--quiet")
	if errors.Is(err, bench.ErrPeerNotInstalled) {
		t.Skipf("redis-server is not installed (run scripts/peers.sh install redis): %v", err)
	}
	if err != nil {
		t.Fatalf("bench cache --durable: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "ops/s felix-durable/peer") || !strings.Contains(lines[1], "put conc=2 value=256") ||
		!strings.Contains(lines[1], " felix-durable ") || !strings.Contains(lines[2], " redis-aof ") || !strings.HasSuffix(lines[2], "x") {
		t.Fatalf("table:\n%s", out)
	}
	t.Log("\n" + out)
}

// An external broker's cache is what it is: --durable is refused there.
func TestBenchCacheDurableExternalRefused(t *testing.T) {
	_, err := runCLI(t, "bench", "cache", "--addr", "127.0.0.1:1", "--durable", "--quiet")
	if err == nil || !strings.Contains(err.Error(), "--durable") {
		t.Fatalf("bench cache --addr --durable: %v, want a --durable error", err)
	}
}

// The felix serve child of felix bench cache --durable (--broker process,
// the default) logs the bench cache's writes in its data dir.
func TestBenchBrokerProcessDurableCache(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fb, err := bench.StartFelixProcessWith(ctx, os.Args[0], nil, []string{asFelixEnv + "=1"},
		bench.BenchBrokerOptions{DurableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Stop()
	const ops, size = 200, 1024
	res, err := bench.RunCache(ctx, &bench.FelixCacheTarget{Addr: fb.Addr, TLS: fb.TLS, Label: "felix-durable"},
		bench.CacheConfig{Op: bench.CachePut, Concurrency: 4, Keys: 50, ValueSize: size, Ops: ops})
	if err != nil || res.Errors != 0 {
		t.Fatalf("put: %v, %d errors (first %q)", err, res.Errors, res.FirstError)
	}
	var logBytes int64
	filepath.WalkDir(cacheDir(fb.DataDir, bench.BenchCache), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				logBytes += fi.Size()
			}
		}
		return nil
	})
	if logBytes < ops*size {
		t.Fatalf("the bench cache's log under %s holds %d bytes after %d puts of %d bytes", fb.DataDir, logBytes, ops, size)
	}
	if err := fb.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}
	if _, err := os.Stat(fb.DataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s left behind: %v", fb.DataDir, err)
	}
}
