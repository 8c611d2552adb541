package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/syncbuf"
)

// A cache declared with --durable-cache keeps, across a broker restart on
// the same data directory, what the SDK wrote: values, versions (a
// compare-and-set with a version read before the restart applies, a stale
// one fails), remaining TTLs and deletes.
func TestDurableCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--durable-cache", "default/default/sessions", "--fsync", "always", "--no-dev-defaults"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	addr, _, ca, stop := startServeDir(t, dir, args...)
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	kv := c.Cache("default", "sessions")
	v1, err := kv.Put(ctx, "user:1", []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := kv.Put(ctx, "user:1", []byte("alice v2"), client.IfVersion(v1))
	if err != nil {
		t.Fatalf("compare-and-set: %v", err)
	}
	if _, err := kv.Put(ctx, "token", []byte("t0k"), client.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ok, err := kv.Delete(ctx, "gone"); !ok || err != nil {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
	c.Close()
	stop()
	if _, err := os.Stat(cacheDir(dir, cache.Scope{Tenant: "default", Namespace: "default", Cache: "sessions"})); err != nil {
		t.Fatalf("the cache's log directory: %v", err)
	}

	addr, _, ca, stop = startServeDir(t, dir, args...)
	defer stop()
	c, err = client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv = c.Cache("default", "sessions")
	it, err := kv.GetItem(ctx, "user:1")
	if err != nil || !it.Found || string(it.Value) != "alice v2" || it.Version != v2 {
		t.Fatalf("user:1 after restart = %q@%d found=%v, %v; want %q@%d", it.Value, it.Version, it.Found, err, "alice v2", v2)
	}
	ttl, hasExpiry, found, err := kv.TTL(ctx, "token")
	if err != nil || !found || !hasExpiry || ttl > time.Hour || ttl < 55*time.Minute {
		t.Fatalf("token's TTL after restart = %v (expiry %v, found %v), %v", ttl, hasExpiry, found, err)
	}
	if v, ok, err := kv.Get(ctx, "token"); err != nil || !ok || string(v) != "t0k" {
		t.Fatalf("token after restart = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := kv.Get(ctx, "gone"); ok || err != nil {
		t.Fatalf("deleted key after restart: found %v, %v", ok, err)
	}
	if _, err := kv.Put(ctx, "user:1", []byte("stale"), client.IfVersion(v1)); !errors.Is(err, client.ErrConditionFailed) {
		t.Fatalf("compare-and-set with a stale version after restart: %v", err)
	}
	v3, err := kv.Put(ctx, "user:1", []byte("alice v3"), client.IfVersion(v2))
	if err != nil {
		t.Fatalf("compare-and-set with the version read before the restart: %v", err)
	}
	if v3 <= v2 {
		t.Fatalf("version after restart %d, not above %d", v3, v2)
	}
}

// A durable cache declared twice, or also with --cache, is refused at start.
func TestDurableCacheDeclaredTwiceRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--cache", "a/b/c", "--durable-cache", "a/b/c:1024"},
		{"--durable-cache", "a/b/c", "--durable-cache", "a/b/c"},
		{"--durable-cache", "a/b"},
	} {
		err := runServeUntilReady(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--metrics-addr", "off", "--controlplane-addr", "off"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "durable-cache") {
			t.Fatalf("serve %v: %v, want a --durable-cache error", args, err)
		}
	}
}

// A durable cache's log that no --durable-cache declares after a restart
// (the cache declared in memory now, or not at all, or under another
// namespace) stays on disk, and the broker says so at start, naming the
// cache and the directory; declared durable again, it serves the entries.
func TestRestartReportsDurableCacheLogsNotServed(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, _, ca, stop := startServeDir(t, dir, "--no-dev-defaults", "--durable-cache", "t/n/c")
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, TenantID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cache("n", "c").Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	stop()
	logDir := cacheDir(dir, cache.Scope{Tenant: "t", Namespace: "n", Cache: "c"})
	const warning = "durable cache log not served"

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"in memory", []string{"--cache", "t/n/c"}, "declared=in-memory"},
		{"removed", nil, "declared=no"},
		{"another namespace", []string{"--durable-cache", "t/other/c"}, "declared=no"},
	} {
		logs := &syncbuf.Buffer{}
		_, _, _, stop := startServeLogs(t, dir, logs, append([]string{"--no-dev-defaults"}, tc.args...)...)
		stop()
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, warning) {
				line = l
			}
		}
		if !strings.Contains(line, "cache=t/n/c") || !strings.Contains(line, "dir="+logDir) || !strings.Contains(line, tc.want) {
			t.Errorf("%s: no warning naming t/n/c, %s and %s; log:\n%s", tc.name, logDir, tc.want, logs)
		}
		if strings.Count(logs.String(), warning) != 1 {
			t.Errorf("%s: want one warning (only t/n/c is not served); log:\n%s", tc.name, logs)
		}
	}

	logs := &syncbuf.Buffer{}
	addr, _, ca, stop = startServeLogs(t, dir, logs, "--no-dev-defaults", "--durable-cache", "t/n/c", "--durable-cache", "t/other/c")
	defer stop()
	if strings.Contains(logs.String(), warning) {
		t.Errorf("a warning while every cache log is served:\n%s", logs)
	}
	c, err = client.Dial(ctx, addr, client.Options{CAFile: ca, TenantID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, ok, err := c.Cache("n", "c").Get(ctx, "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("declared durable again: k = %q, %v, %v; want v", v, ok, err)
	}
}
