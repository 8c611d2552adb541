package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/felixmq/felix/client"
)

// FelixCacheTarget is a Felix cache as a CacheTarget, driven by the Go SDK:
// one client with Conns connections × StreamsPerConn streams, requests
// pipelined on each stream.
type FelixCacheTarget struct {
	Addr           string
	TLS            *tls.Config
	Namespace      string // default "default"
	Cache          string // default "bench"
	Conns          int    // default 2
	StreamsPerConn int    // default 4
	// Label is Name's answer. Default "felix"; felix bench cache
	// --durable labels a durable cache "felix-durable".
	Label string

	c  *client.Client
	kv *client.Cache
}

// Name implements CacheTarget: Label, default "felix".
func (t *FelixCacheTarget) Name() string {
	if t.Label == "" {
		return "felix"
	}
	return t.Label
}

// Setup implements CacheTarget.
func (t *FelixCacheTarget) Setup(ctx context.Context, _ int) error {
	if t.c != nil {
		return errors.New("felix cache target is already set up")
	}
	c, err := client.Dial(ctx, t.Addr, client.Options{TLS: t.TLS, Reconnect: client.ReconnectPolicy{Disabled: true},
		PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1,
		CacheConns: t.Conns, CacheStreamsPerConn: t.StreamsPerConn})
	if err != nil {
		return err
	}
	ns, name := t.Namespace, t.Cache
	if ns == "" {
		ns = "default"
	}
	if name == "" {
		name = "bench"
	}
	t.c, t.kv = c, c.Cache(ns, name)
	return nil
}

// Put implements CacheTarget.
func (t *FelixCacheTarget) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	var opts []client.PutOption
	if ttl > 0 {
		opts = append(opts, client.WithTTL(ttl))
	}
	_, err := t.kv.Put(ctx, key, value, opts...)
	return err
}

// Get implements CacheTarget.
func (t *FelixCacheTarget) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return t.kv.Get(ctx, key)
}

// Close implements CacheTarget.
func (t *FelixCacheTarget) Close() error {
	if t.c == nil {
		return nil
	}
	err := t.c.Close()
	t.c, t.kv = nil, nil
	return err
}
