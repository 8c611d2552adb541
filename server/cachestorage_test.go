package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// A durable cache whose log cannot store a write answers cache_error with
// code "storage" and a message starting with wire.StorageWriteFailed; the
// SDK's error matches client.ErrStorage, and the entry is unchanged. (The
// log is made to refuse by closing the cache store under the running
// server: its caches go on, their writes fail as on a full disk.)
func TestDurableCacheStorageFailureCode(t *testing.T) {
	tb := testbroker.Start(t, smallVersions())
	scope := cache.Scope{Tenant: "t1", Namespace: "default", Cache: "kept"}
	if _, err := tb.Caches.CreateDurable(scope, cache.Config{}, cache.DurableOptions{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, tb)
	s := c.open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x", ClientFlags: wire.U16(wire.KnownFlags | wire.CapCacheExt)})
	s.expectJSON(`{"type":"auth_ok","server_flags":16447}`)
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "k", Value: []byte("v1"), RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"cache_ok","request_id":1,"version":1}`)

	tb.Caches.Close()
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "k", Value: []byte("v2"), RequestID: wire.U64(2)})
	m := s.readMsg()
	ce, ok := m.(*wire.CacheError)
	if !ok || ce.Code != wire.CacheCodeStorage || !strings.HasPrefix(ce.Message, wire.StorageWriteFailed) || ce.RequestID != 2 {
		t.Fatalf("put on a log that cannot write: %#v, want cache_error code %q", m, wire.CacheCodeStorage)
	}
	s.sendMsg(&wire.CacheDelete{TenantID: "t1", Namespace: "default", Cache: "kept", Key: "k", RequestID: 3})
	if ce, ok := s.readMsg().(*wire.CacheError); !ok || ce.Code != wire.CacheCodeStorage {
		t.Fatalf("delete on a log that cannot write: %#v", ce)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS, TenantID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kv := cl.Cache("default", "kept")
	_, err = kv.Put(ctx, "k", []byte("v3"))
	var sce *client.CacheError
	if !errors.Is(err, client.ErrStorage) || !errors.As(err, &sce) || sce.Code != wire.CacheCodeStorage {
		t.Fatalf("SDK put: %v, want a CacheError matching ErrStorage", err)
	}
	if _, err := kv.Delete(ctx, "k"); !errors.Is(err, client.ErrStorage) {
		t.Fatalf("SDK delete: %v, want ErrStorage", err)
	}
	if v, found, err := kv.Get(ctx, "k"); err != nil || !found || string(v) != "v1" {
		t.Fatalf("get after the failed writes: %q %v %v, want v1", v, found, err)
	}
}
