package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// A compare-and-set on a bounded cache whose entry takes more than half of
// its capacity: the broker used to evict the entry to make room for its
// own replacement and answer condition_failed ("does not exist"), so the
// CAS failed and the value was lost. Redis users expect WATCH/SET-style
// updates of a big value to just work.
func TestExploreCacheCASOnFullCache(t *testing.T) { bothEncodings(t, testExploreCacheCASOnFullCache) }

func testExploreCacheCASOnFullCache(t *testing.T, jsonCache bool) {
	tb, kv := startCache(t, jsonCache, nil, cache.Config{MaxBytes: 4096})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := make([]byte, 3000)
	v, err := kv.Put(ctx, "doc", big)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		big[0] = byte(i)
		nv, err := kv.Put(ctx, "doc", big, client.IfVersion(v))
		if err != nil {
			t.Fatalf("CAS %d from version %d: %v", i, v, err)
		}
		v = nv
	}
	it, err := kv.GetItem(ctx, "doc")
	if err != nil || !it.Found || it.Version != v || it.Value[0] != 4 {
		t.Fatalf("after the CAS updates: found %v version %d (want %d) %v", it.Found, it.Version, v, err)
	}
	// A stale CAS fails and leaves the value alone.
	if _, err := kv.Put(ctx, "doc", big, client.IfVersion(v-1)); !errors.Is(err, client.ErrConditionFailed) {
		t.Fatalf("stale CAS: %v", err)
	}
	if it, _ := kv.GetItem(ctx, "doc"); !it.Found || it.Version != v {
		t.Fatalf("a failed CAS changed the entry: %+v", it)
	}
	c, _ := tb.Caches.Get(cache.Scope{Tenant: "default", Namespace: "default", Cache: "c"})
	if st := c.Stats(); st.Evictions != 0 || st.Bytes > 4096 {
		t.Fatalf("stats %+v", st)
	}
}

// With --auto-create, cache names follow the broker's naming rules (no '/',
// as for streams and for caches created through the control plane). A
// token allowed only namespace "web" (cache:a/web/*) used to auto-create
// and use a cache in namespace "web/x": its resource cache:a/web/x/c
// matched the pattern.
func TestExploreCacheAutoCreateRefusesSlashNames(t *testing.T) {
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tb := testbroker.Start(t, testbroker.WithServerOptions(server.Options{
		Auth:             server.TokenAuth{Verifier: &auth.Verifier{Keys: sg.KeySet()}},
		AutoCreateCaches: true,
	}))
	tok, err := sg.Issue(auth.Claims{Tenant: "a", Subject: "web-svc", Perms: []string{"cache.*:cache:a/web/*"}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, tb, client.Options{TenantID: "a", Token: tok, CacheConns: 1, CacheStreamsPerConn: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Cache("web", "c").Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("auto-create of a/web/c: %v", err)
	}
	for _, ns := range []string{"web/x", "web"} {
		name := map[string]string{"web/x": "c", "web": "x/c"}[ns]
		_, err := c.Cache(ns, name).Put(ctx, "k", []byte("v"))
		if err == nil || !strings.Contains(err.Error(), "contains '/'") {
			t.Errorf("put to namespace %q cache %q: %v, want an invalid-name error", ns, name, err)
		}
	}
	var names []string
	for _, cc := range tb.Caches.Caches() {
		names = append(names, cc.Scope().String())
	}
	if len(names) != 1 || names[0] != "a/web/c" {
		t.Fatalf("caches %v, want only a/web/c", names)
	}
}
