package controlplane

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/syncbuf"
)

// legacyPut writes an object and its created change the way a version
// with looser name rules did (createLeaf, CreateTenant, CreateNamespace
// without their validation): the names are not checked.
func legacyPut(t *testing.T, st *Store, kind string, key Key, obj any) {
	t.Helper()
	var bucket []byte
	var storeKey string
	switch kind {
	case ObjectTenant:
		bucket, storeKey = bucketTenants, key.TenantID
	case ObjectNamespace:
		bucket, storeKey = bucketNamespaces, key.NamespaceKey().String()
	case ObjectStream:
		bucket, storeKey = bucketStreams, key.StreamKey().storeKey()
	case ObjectCache:
		bucket, storeKey = bucketCaches, key.CacheKey().storeKey()
	}
	err := st.update(func(w *wtx) error {
		if err := w.put(bucket, storeKey, obj); err != nil {
			return err
		}
		return w.record(OpCreated, kind, key, obj)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// legacyStore writes, in dir, a store an older version could have made:
// valid objects acme/orders/placed and the cache acme/orders/ok, and
// objects whose names the broker now refuses: the stream "my stream",
// the cache "a*b", the namespace "orders:v1" and its stream "x".
func legacyStore(t *testing.T, dir string) {
	t.Helper()
	st, err := Open(filepath.Join(dir, FileName), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	legacyPut(t, st, ObjectTenant, Key{TenantID: "acme"}, Tenant{TenantID: "acme"})
	legacyPut(t, st, ObjectNamespace, Key{TenantID: "acme", Namespace: "orders"}, Namespace{TenantID: "acme", Namespace: "orders"})
	legacyPut(t, st, ObjectNamespace, Key{TenantID: "acme", Namespace: "orders:v1"}, Namespace{TenantID: "acme", Namespace: "orders:v1"})
	for _, s := range []Stream{
		{TenantID: "acme", Namespace: "orders", Stream: "my stream"},
		{TenantID: "acme", Namespace: "orders", Stream: "placed"},
		{TenantID: "acme", Namespace: "orders:v1", Stream: "x"},
	} {
		s = s.withDefaults()
		legacyPut(t, st, ObjectStream, s.Key().changeKey(), s)
	}
	for _, c := range []Cache{{TenantID: "acme", Namespace: "orders", Cache: "a*b"}, {TenantID: "acme", Namespace: "orders", Cache: "ok"}} {
		legacyPut(t, st, ObjectCache, c.Key().changeKey(), c)
	}
}

// An upgraded control plane starts on a store holding names it now
// refuses, lists, reads and deletes them, and refuses to create or change
// them with an error that says what to do.
func TestLegacyNamesReadableDeletableNotWritable(t *testing.T) {
	dir := t.TempDir()
	legacyStore(t, dir)
	c := newClient(t, startAPI(t, openTestStore(t, dir, StoreOptions{})))
	const ns = "/v1/tenants/acme/namespaces/"
	orders := ns + "orders"
	myStream := orders + "/streams/" + url.PathEscape("my stream")
	star := orders + "/caches/" + url.PathEscape("a*b")

	var sl items[Stream]
	c.must("GET", orders+"/streams", nil, 200, &sl)
	if len(sl.Items) != 2 || sl.Items[0].Stream != "my stream" {
		t.Fatalf("streams %+v", sl.Items)
	}
	var nl items[Namespace]
	c.must("GET", "/v1/tenants/acme/namespaces", nil, 200, &nl)
	if len(nl.Items) != 2 {
		t.Fatalf("namespaces %+v", nl.Items)
	}
	var s Stream
	c.must("GET", myStream, nil, 200, &s)
	if s.Stream != "my stream" {
		t.Fatalf("got %+v", s)
	}
	c.must("GET", star, nil, 200, nil)
	c.must("GET", ns+url.PathEscape("orders:v1"), nil, 200, nil)
	var snap Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &snap)
	if len(snap.Streams) != 3 || len(snap.Caches) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}

	// Changing a legacy object is refused, saying how to get out of it.
	for _, p := range []struct{ path, field string }{{myStream, "stream"}, {star, "cache"}} {
		body := map[string]any{"durable": true}
		if p.field == "cache" {
			body = map[string]any{"capacity_bytes": 10}
		}
		eb := c.wantError("PATCH", p.path, body, 400, codeValidation)
		for _, want := range []string{"invalid " + p.field, "older version", "delete"} {
			if !strings.Contains(eb.Message, want) {
				t.Errorf("PATCH %s: message %q lacks %q", p.path, eb.Message, want)
			}
		}
	}
	// So is a new object under a legacy namespace, and a new invalid name.
	eb := c.wantError("POST", ns+url.PathEscape("orders:v1")+"/streams", map[string]any{"stream": "y"}, 400, codeValidation)
	if !strings.Contains(eb.Message, "invalid namespace") || !strings.Contains(eb.Message, "older version") {
		t.Errorf("create under a legacy namespace: %q", eb.Message)
	}
	for _, name := range []string{"my stream", "orders:v2", "a*", "tab\there"} {
		eb := c.wantError("POST", orders+"/streams", map[string]any{"stream": name}, 400, codeValidation)
		if !strings.Contains(eb.Message, "without '/', ':', '*', whitespace or control characters") {
			t.Errorf("create %q: message %q gives no rule", name, eb.Message)
		}
	}
	eb = c.wantError("POST", "/v1/tenants", map[string]any{"tenant_id": "a b"}, 400, codeValidation)
	if !strings.Contains(eb.Message, `"a-b"`) {
		t.Errorf("create tenant %q: message %q suggests no valid name", "a b", eb.Message)
	}

	// Deleting works, cascades included.
	c.must("DELETE", myStream, nil, 204, nil)
	c.must("DELETE", star, nil, 204, nil)
	c.must("DELETE", ns+url.PathEscape("orders:v1"), nil, 204, nil)
	c.must("GET", "/v1/snapshot", nil, 200, &snap)
	if len(snap.Streams) != 1 || snap.Streams[0].Stream != "placed" || len(snap.Caches) != 1 || len(snap.Namespaces) != 1 {
		t.Fatalf("after deletes: %+v", snap)
	}
}

// A broker following a control plane that holds legacy names skips them
// (warned, counted in Stats().Skipped), applies every valid object, from
// the snapshot and from the feed, holds no failures, and applies the
// legacy objects' deletes.
func TestFollowerSkipsLegacyNames(t *testing.T) {
	for _, mode := range []string{"http", "in-process"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			legacyStore(t, dir)
			st := openTestStore(t, dir, StoreOptions{})
			var src Source = st
			if mode == "http" {
				src = NewHTTPSource(startAPI(t, st).URL, testToken, nil)
			}
			rig := newBrokerRig(t)
			var logs syncbuf.Buffer
			f, err := NewFollower(FollowerOptions{Source: src, Applier: rig.applier,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				t.Fatal(err)
			}
			mustSync(t, f)
			stats := f.Stats()
			if rig.stream("acme", "orders", "placed") == nil {
				t.Fatalf("valid stream not applied: %+v", stats)
			}
			if _, err := rig.caches.Get(CacheKey{"acme", "orders", "ok"}.scope()); err != nil {
				t.Fatalf("valid cache not applied: %v", err)
			}
			if len(stats.Failed) != 0 || stats.ApplyErrors != 0 {
				t.Fatalf("legacy names held as failures, retried forever: %+v", stats)
			}
			if stats.Skipped != 4 {
				t.Fatalf("skipped %d, want 4 (2 streams, 1 cache, 1 namespace): %+v", stats.Skipped, stats)
			}
			for _, want := range []string{"acme/orders/my stream", "acme/orders/a*b", "acme/orders:v1", "acme/orders:v1/x", "level=WARN"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs.String())
				}
			}

			// The feed: a legacy object between valid ones holds nothing back.
			legacyPut(t, st, ObjectStream, Key{TenantID: "acme", Namespace: "orders", Stream: "bad:one"},
				Stream{TenantID: "acme", Namespace: "orders", Stream: "bad:one"}.withDefaults())
			if _, err := st.CreateStream(Stream{TenantID: "acme", Namespace: "orders", Stream: "later"}); err != nil {
				t.Fatal(err)
			}
			mustSync(t, f)
			mustSync(t, f)
			stats = f.Stats()
			if rig.stream("acme", "orders", "later") == nil || len(stats.Failed) != 0 || stats.Skipped != 5 {
				t.Fatalf("after a legacy change in the feed: %+v", stats)
			}

			// The operator cleans up; the deletes flow through.
			for _, k := range []StreamKey{{"acme", "orders", "my stream"}, {"acme", "orders", "bad:one"}} {
				if err := st.DeleteStream(k); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.DeleteNamespace(NamespaceKey{"acme", "orders:v1"}); err != nil {
				t.Fatal(err)
			}
			mustSync(t, f)
			stats = f.Stats()
			if len(stats.Failed) != 0 || stats.ApplyErrors != 0 || stats.Skipped != 5 {
				t.Fatalf("after deleting the legacy objects: %+v", stats)
			}
			if rig.stream("acme", "orders", "placed") == nil || rig.stream("acme", "orders", "later") == nil {
				t.Fatal("valid streams lost")
			}
		})
	}
}

// fixedSource serves one snapshot and one page of changes after it.
type fixedSource struct {
	snap  Snapshot
	items []Change
}

func (s *fixedSource) Snapshot(context.Context) (*Snapshot, error) { snap := s.snap; return &snap, nil }
func (s *fixedSource) Changes(_ context.Context, since uint64, limit int) (*ChangesPage, error) {
	page := &ChangesPage{StoreID: s.snap.StoreID, Items: []Change{}, NextSeq: since}
	for _, c := range s.items {
		if c.Seq >= since && len(page.Items) < limit {
			page.Items = append(page.Items, c)
			page.NextSeq = c.Seq + 1
		}
	}
	return page, nil
}

// A change the follower does not understand is skipped and counted in
// Stats().Skipped, like an object with a refused name, and the changes
// after it apply.
func TestFollowerCountsChangesNotUnderstood(t *testing.T) {
	obj := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	src := &fixedSource{snap: Snapshot{StoreID: "s", NextSeq: 1}, items: []Change{
		{Seq: 1, Op: OpCreated, Kind: ObjectTenant, Key: Key{TenantID: "t"}, Object: obj(Tenant{TenantID: "t"})},
		{Seq: 2, Op: OpCreated, Kind: "bridge", Key: Key{TenantID: "t"}, Object: obj(map[string]int{"x": 1})},
		{Seq: 3, Op: OpCreated, Kind: ObjectNamespace, Key: Key{TenantID: "t", Namespace: "n"}, Object: json.RawMessage(`{"namespace":7}`)},
		{Seq: 4, Op: OpCreated, Kind: ObjectNamespace, Key: Key{TenantID: "t", Namespace: "m"}, Object: obj(Namespace{TenantID: "t", Namespace: "m"})},
	}}
	rig := newBrokerRig(t)
	f := newTestFollower(t, src, rig.applier)
	mustSync(t, f)
	st := f.Stats()
	if st.Skipped != 2 || st.NextSeq != 5 || len(st.Failed) != 0 {
		t.Fatalf("stats %+v, want 2 skipped changes and the feed read to 5", st)
	}
	if _, err := rig.b.DeleteNamespace("t", "m"); err != nil {
		t.Fatalf("the change after the skipped ones was not applied: %v", err)
	}
}
