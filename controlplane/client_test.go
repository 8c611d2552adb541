package controlplane

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestClientCRUD drives every Client method against a real API on
// 127.0.0.1 and checks the store saw each change.
func TestClientCRUD(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	hs := startAPI(t, st)
	c := NewClient(hs.URL+"/", testToken, nil)
	ctx := context.Background()

	if _, err := c.CreateTenant(ctx, Tenant{TenantID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNamespace(ctx, Namespace{TenantID: "acme", Namespace: "shop"}); err != nil {
		t.Fatal(err)
	}
	age := int64(3600)
	s, err := c.CreateStream(ctx, Stream{TenantID: "acme", Namespace: "shop", Stream: "orders", Durable: true, Retention: Retention{MaxAgeSeconds: &age}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != KindStream || s.Fsync != FsyncInterval || !s.Durable || s.Retention.MaxAgeSeconds == nil || *s.Retention.MaxAgeSeconds != age {
		t.Fatalf("created stream = %+v; want defaults filled in and the given fields kept", s)
	}
	if _, err := c.CreateCache(ctx, Cache{TenantID: "acme", Namespace: "shop", Cache: "sessions", CapacityBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}

	ts, err := c.Tenants(ctx)
	if err != nil || len(ts) != 1 || ts[0].TenantID != "acme" || ts[0].DisplayName != "Acme" {
		t.Fatalf("Tenants = %+v, %v", ts, err)
	}
	nss, err := c.Namespaces(ctx, "acme")
	if err != nil || len(nss) != 1 || nss[0].Namespace != "shop" {
		t.Fatalf("Namespaces = %+v, %v", nss, err)
	}
	ns := NamespaceKey{"acme", "shop"}
	ss, err := c.Streams(ctx, ns)
	if err != nil || len(ss) != 1 || ss[0].Stream != "orders" {
		t.Fatalf("Streams = %+v, %v", ss, err)
	}
	cs, err := c.Caches(ctx, ns)
	if err != nil || len(cs) != 1 || cs[0].CapacityBytes != 1<<20 {
		t.Fatalf("Caches = %+v, %v", cs, err)
	}

	sk := StreamKey{"acme", "shop", "orders"}
	never := FsyncNever
	if _, err := c.UpdateStream(ctx, sk, StreamPatch{Fsync: &never}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Stream(sk); err != nil || got.Fsync != FsyncNever {
		t.Fatalf("store after UpdateStream: %+v, %v", got, err)
	}
	if got, err := c.Stream(ctx, sk); err != nil || got.Fsync != FsyncNever || got.Retention.MaxAgeSeconds == nil {
		t.Fatalf("Stream = %+v, %v", got, err)
	}
	ck := CacheKey{"acme", "shop", "sessions"}
	size := int64(2 << 20)
	if _, err := c.UpdateCache(ctx, ck, CachePatch{CapacityBytes: &size}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Cache(ctx, ck); err != nil || got.CapacityBytes != size {
		t.Fatalf("Cache = %+v, %v", got, err)
	}

	if err := c.DeleteCache(ctx, ck); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteStream(ctx, sk); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stream(sk); !errors.Is(err, ErrNotFound) {
		t.Fatalf("store after DeleteStream: %v; want not found", err)
	}
	if err := c.DeleteNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if ts, err := st.Tenants(); err != nil || len(ts) != 0 {
		t.Fatalf("store tenants after delete: %+v, %v", ts, err)
	}
}

// TestClientErrors checks that the API's refusals come back as *APIError
// unwrapping to the package's sentinels.
func TestClientErrors(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	hs := startAPI(t, st)
	c := NewClient(hs.URL, testToken, nil)
	ctx := context.Background()

	if _, err := c.Stream(ctx, StreamKey{"nope", "x", "y"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing stream: %v; want ErrNotFound", err)
	}
	if _, err := c.CreateTenant(ctx, Tenant{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateTenant(ctx, Tenant{TenantID: "acme"})
	var apiErr *APIError
	if !errors.Is(err, ErrExists) || !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Fatalf("second create: %v; want a 409 ErrExists", err)
	}
	if _, err := c.CreateTenant(ctx, Tenant{TenantID: "bad/name"}); !errors.Is(err, ErrValidation) {
		t.Fatalf("bad name: %v; want ErrValidation", err)
	}
	if _, err := c.CreateNamespace(ctx, Namespace{TenantID: "ghost", Namespace: "n"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("namespace of a missing tenant: %v; want ErrNotFound", err)
	}
	if _, err := NewClient(hs.URL, "wrong", nil).Tenants(ctx); !errors.Is(err, ErrForbidden) {
		t.Fatalf("wrong token: %v; want ErrForbidden", err)
	}
	if _, err := NewClient(hs.URL, "", nil).Tenants(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no token: %v; want ErrUnauthorized", err)
	}
	// A name that needs escaping reaches the right object, not another
	// path: the store refuses it as a name, it is not read as a route.
	if _, err := c.Namespaces(ctx, "acme/namespaces/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("escaped tenant: %v; want ErrNotFound", err)
	}
	if ts, err := c.Tenants(ctx); err != nil || !slices.ContainsFunc(ts, func(x Tenant) bool { return x.TenantID == "acme" }) {
		t.Fatalf("Tenants = %+v, %v", ts, err)
	}
}
