package controlplane

import (
	"context"
	"errors"
	"testing"
)

func TestStoreCRUDCascadeAndReopen(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir, StoreOptions{})
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := st.CreateTenant(Tenant{TenantID: "acme", DisplayName: "Acme"})
	mustDo(err)
	if _, err := st.CreateTenant(Tenant{TenantID: "acme"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate tenant: %v", err)
	}
	if _, err := st.CreateNamespace(Namespace{TenantID: "nobody", Namespace: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("namespace of a missing tenant: %v", err)
	}
	_, err = st.CreateNamespace(Namespace{TenantID: "acme", Namespace: "orders"})
	mustDo(err)
	_, err = st.CreateNamespace(Namespace{TenantID: "acme", Namespace: "billing"})
	mustDo(err)
	s, err := st.CreateStream(Stream{TenantID: "acme", Namespace: "orders", Stream: "placed", Durable: true})
	mustDo(err)
	if s.Kind != KindStream || s.Shards != 1 || s.Consistency != ConsistencyLeader || s.Delivery != DeliveryAtMostOnce || s.Fsync != FsyncInterval {
		t.Fatalf("defaults not applied: %+v", s)
	}
	_, err = st.CreateStream(Stream{TenantID: "acme", Namespace: "billing", Stream: "invoices"})
	mustDo(err)
	_, err = st.CreateCache(Cache{TenantID: "acme", Namespace: "orders", Cache: "sessions", CapacityBytes: 1 << 20})
	mustDo(err)
	s, err = st.UpdateStream(s.Key(), StreamPatch{Fsync: ptr(FsyncAlways), Retention: &Retention{MaxAgeSeconds: ptr[int64](3600)}})
	mustDo(err)
	if s.Fsync != FsyncAlways || *s.Retention.MaxAgeSeconds != 3600 || !s.Durable {
		t.Fatalf("patched stream: %+v", s)
	}
	if _, err := st.UpdateStream(s.Key(), StreamPatch{Fsync: ptr("sometimes")}); !errors.Is(err, ErrValidation) {
		t.Fatalf("bad fsync patch: %v", err)
	}

	// Persistence: close and reopen.
	id := st.ID()
	st.Close()
	st = openTestStore(t, dir, StoreOptions{})
	if st.ID() != id {
		t.Fatalf("store id changed across reopen: %s → %s", id, st.ID())
	}
	got, err := st.Stream(StreamKey{"acme", "orders", "placed"})
	mustDo(err)
	if got.Fsync != FsyncAlways || !got.Durable || *got.Retention.MaxAgeSeconds != 3600 {
		t.Fatalf("reopened stream: %+v", got)
	}
	c, err := st.Cache(CacheKey{"acme", "orders", "sessions"})
	mustDo(err)
	if c.CapacityBytes != 1<<20 {
		t.Fatalf("reopened cache: %+v", c)
	}

	// Cascade: deleting the namespace deletes its stream and cache, children first.
	before, err := st.Snapshot(context.Background())
	mustDo(err)
	mustDo(st.DeleteNamespace(NamespaceKey{"acme", "orders"}))
	page, err := st.Changes(context.Background(), before.NextSeq, 100)
	mustDo(err)
	var kinds []string
	for _, ch := range page.Items {
		if ch.Op != OpDeleted || string(ch.Object) != "null" {
			t.Fatalf("cascade change %+v", ch)
		}
		kinds = append(kinds, ch.Kind+":"+ch.Key.Stream+ch.Key.Cache+ch.Key.Namespace)
	}
	want := []string{"stream:placedorders", "cache:sessionsorders", "namespace:orders"}
	if len(kinds) != len(want) {
		t.Fatalf("cascade changes %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("cascade changes %v, want %v", kinds, want)
		}
	}
	if _, err := st.Stream(StreamKey{"acme", "orders", "placed"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stream survived its namespace: %v", err)
	}
	// Tenant cascade.
	mustDo(st.DeleteTenant("acme"))
	snap, err := st.Snapshot(context.Background())
	mustDo(err)
	if len(snap.Tenants)+len(snap.Namespaces)+len(snap.Streams)+len(snap.Caches) != 0 {
		t.Fatalf("left after tenant delete: %+v", snap)
	}
	page, err = st.Changes(context.Background(), page.NextSeq, 100)
	mustDo(err)
	if len(page.Items) != 3 || page.Items[2].Kind != ObjectTenant || page.Items[0].Key.Stream != "invoices" {
		t.Fatalf("tenant cascade changes: %+v", page.Items)
	}
	if page.NextSeq != snap.NextSeq || page.More {
		t.Fatalf("caught-up page next_seq %d more %v, snapshot next_seq %d", page.NextSeq, page.More, snap.NextSeq)
	}
}

func TestStoreValidation(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	if _, err := st.CreateTenant(Tenant{TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}); err != nil {
		t.Fatal(err)
	}
	long := string(make([]byte, 300))
	for _, tc := range []struct {
		s     Stream
		field string
	}{
		{Stream{TenantID: "t", Namespace: "n", Stream: ""}, "stream"},
		{Stream{TenantID: "t", Namespace: "n", Stream: "a/b"}, "stream"},
		{Stream{TenantID: "t", Namespace: "n", Stream: long}, "stream"},
		{Stream{TenantID: "t", Namespace: "n", Stream: "s", Retention: Retention{MaxSizeBytes: ptr[int64](-1)}}, "retention.max_size_bytes"},
		{Stream{TenantID: "t", Namespace: "n", Stream: "s", Fsync: "often"}, "fsync"},
		{Stream{TenantID: "t", Namespace: "n", Stream: "s", Shards: -2}, "shards"},
		{Stream{TenantID: "t", Namespace: "n", Stream: "s", Kind: "Topic"}, "kind"},
	} {
		_, err := st.CreateStream(tc.s)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("CreateStream(%q...): %v, want a validation error on %s", tc.s.Stream[:min(len(tc.s.Stream), 8)], err, tc.field)
		}
	}
	if _, err := st.CreateCache(Cache{TenantID: "t", Namespace: "n", Cache: "c", CapacityBytes: -5}); err == nil {
		t.Fatal("negative capacity accepted")
	}
}

func TestChangeLogTrimAndResync(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{ChangeRetention: 5})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if _, err := st.CreateTenant(Tenant{TenantID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// 8 changes, 5 kept: seqs 4..8.
	var re *ResyncError
	if _, err := st.Changes(ctx, 3, 10); !errors.As(err, &re) || re.Oldest != 4 || re.Next != 9 {
		t.Fatalf("Changes(3) = %v, want a resync (oldest 4, next 9)", err)
	}
	if _, err := st.Changes(ctx, 0, 10); !errors.Is(err, ErrResyncRequired) {
		t.Fatalf("Changes(0) after trimming = %v, want a resync", err)
	}
	if _, err := st.Changes(ctx, 10, 10); !errors.Is(err, ErrResyncRequired) {
		t.Fatalf("Changes past the head = %v, want a resync", err)
	}
	page, err := st.Changes(ctx, 4, 10)
	if err != nil || len(page.Items) != 5 || page.Items[0].Seq != 4 || page.NextSeq != 9 {
		t.Fatalf("Changes(4) = %+v, %v", page, err)
	}
	page, err = st.Changes(ctx, 9, 10)
	if err != nil || len(page.Items) != 0 || page.NextSeq != 9 || page.More {
		t.Fatalf("Changes(head) = %+v, %v", page, err)
	}
}

func TestStoreClosed(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	hs := startAPI(t, st)
	st.Close()
	if err := st.Ping(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if _, err := st.CreateTenant(Tenant{TenantID: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateTenant after Close: %v", err)
	}
	apiClient{t: t, base: hs.URL}.wantError("GET", "/v1/system/health", nil, 500, codeInternal)
}
