package bench

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisOrSkip starts a private redis-server, or skips when none is
// installed.
func startRedisOrSkip(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	addr, stop, err := StartRedis(ctx, RedisServerOptions{})
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("redis-server is not installed (run scripts/peers.sh install redis): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return addr
}

func TestRedisTargetGetAndPut(t *testing.T) {
	addr := startRedisOrSkip(t)
	ctx := context.Background()

	res, err := RunCache(ctx, &RedisTarget{Addr: addr}, CacheConfig{Concurrency: 4, Keys: 1000, WarmupOps: 500, Ops: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 5000 || res.Errors != 0 || res.Misses != 0 || res.BadValues != 0 || res.Latency.Count != 5000 {
		t.Errorf("get: ops %d errors %d misses %d bad %d latency count %d (first error %q)",
			res.Ops, res.Errors, res.Misses, res.BadValues, res.Latency.Count, res.FirstError)
	}
	t.Logf("get: %v, %.0f ops/s", res.Latency, res.OpsPerSec)

	res, err = RunCache(ctx, &RedisTarget{Addr: addr}, CacheConfig{Op: CachePut, Concurrency: 4, Keys: 1000, TTL: time.Minute, Ops: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 5000 || res.Errors != 0 {
		t.Errorf("put: ops %d errors %d (first error %q)", res.Ops, res.Errors, res.FirstError)
	}
	t.Logf("put: %v, %.0f ops/s", res.Latency, res.OpsPerSec)

	// The Puts landed with their TTL and value size.
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	keys, err := c.Keys(ctx, res.Config.KeyPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 || len(keys) > 1000 {
		t.Fatalf("%d keys with prefix %q", len(keys), res.Config.KeyPrefix)
	}
	ttl, err := c.PTTL(ctx, keys[0]).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL %s = %s, %v; want within (0, 1m]", keys[0], ttl, err)
	}
	if n, err := c.StrLen(ctx, keys[0]).Result(); err != nil || n != 256 {
		t.Errorf("STRLEN %s = %d, %v", keys[0], n, err)
	}
}

func TestRedisTargetMissAndNoTTL(t *testing.T) {
	addr := startRedisOrSkip(t)
	ctx := context.Background()
	tgt := &RedisTarget{Addr: addr}
	if err := tgt.Setup(ctx, 1); err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	if v, found, err := tgt.Get(ctx, "felixbench:test:absent"); err != nil || found || v != nil {
		t.Fatalf("absent key: %q %v %v", v, found, err)
	}
	if err := tgt.Put(ctx, "felixbench:test:k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, found, err := tgt.Get(ctx, "felixbench:test:k"); err != nil || !found || string(v) != "v1" {
		t.Fatalf("get: %q %v %v", v, found, err)
	}
	if err := tgt.Setup(ctx, 1); err == nil {
		t.Error("second Setup accepted")
	}
}

func TestRedisTargetUnreachable(t *testing.T) {
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	tgt := &RedisTarget{Addr: "127.0.0.1:" + strconv.Itoa(port)}
	_, err = RunCache(context.Background(), tgt, CacheConfig{Ops: 1, Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "scripts/peers.sh start redis") {
		t.Fatalf("err = %v, want a hint to start redis", err)
	}
}

func TestStartRedisStopsAndCleansUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	before, _ := os.ReadDir(os.TempDir())
	addr, stop, err := StartRedis(ctx, RedisServerOptions{})
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("redis-server is not installed (run scripts/peers.sh install redis): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("addr %q", addr)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	save, err := c.ConfigGet(ctx, "save").Result()
	if err != nil || save["save"] != "" {
		t.Errorf("CONFIG GET save = %v, %v; want snapshots off", save, err)
	}
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil || aof["appendonly"] != "no" {
		t.Errorf("CONFIG GET appendonly = %v, %v", aof, err)
	}
	_ = c.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	if portAccepts(port) {
		t.Error("redis still accepting after stop")
	}
	after, _ := os.ReadDir(os.TempDir())
	if count(after, "felix-bench-redis-") > count(before, "felix-bench-redis-") {
		t.Error("redis temp dir left behind")
	}
}

func TestStartRedisMissingBinary(t *testing.T) {
	_, _, err := StartRedis(context.Background(), RedisServerOptions{Binary: "/nonexistent/redis-server"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/redis-server") {
		t.Fatalf("err = %v", err)
	}
}
