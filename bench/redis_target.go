package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisAddr is where scripts/peers.sh starts redis by default.
const DefaultRedisAddr = "127.0.0.1:6379"

// RedisTarget is Redis as a CacheTarget through go-redis v9: one client
// whose connection pool holds a connection per worker. Put is
// SET key value (with PX/EX ttl when ttl > 0: go-redis picks EX for whole
// seconds), Get is GET, a nil reply being a miss. Everything else is
// go-redis's default (RESP3, timeouts, idle times). The zero value uses
// DefaultRedisAddr.
type RedisTarget struct {
	// Addr is the server's host:port. Default DefaultRedisAddr.
	Addr string
	// PoolSize is the connection pool's size; it is raised to the run's
	// concurrency when smaller, so no worker waits for a connection.
	// Default: the concurrency.
	PoolSize int
	// Label is Name's answer. Default "redis"; felix bench cache
	// --durable labels a server with an AOF "redis-aof".
	Label string

	client *redis.Client
}

// Name implements CacheTarget: Label, default "redis".
func (t *RedisTarget) Name() string {
	if t.Label == "" {
		return "redis"
	}
	return t.Label
}

func (t *RedisTarget) addr() string {
	if t.Addr == "" {
		return DefaultRedisAddr
	}
	return t.Addr
}

// Setup implements CacheTarget: it creates the client and checks the
// server with a PING.
func (t *RedisTarget) Setup(ctx context.Context, concurrency int) error {
	if t.client != nil {
		return errors.New("redis target is already set up")
	}
	c := redis.NewClient(&redis.Options{
		Addr:     t.addr(),
		PoolSize: max(t.PoolSize, concurrency, 1),
	})
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return fmt.Errorf("connect %s: %w (is it running? scripts/peers.sh start redis)", t.addr(), err)
	}
	t.client = c
	return nil
}

// Put implements CacheTarget.
func (t *RedisTarget) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return t.client.Set(ctx, key, value, ttl).Err()
}

// Get implements CacheTarget.
func (t *RedisTarget) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := t.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// Close implements CacheTarget. Safe to call when not set up.
func (t *RedisTarget) Close() error {
	if t.client == nil {
		return nil
	}
	err := t.client.Close()
	t.client = nil
	return err
}
