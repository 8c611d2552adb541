package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
)

type brokerRig struct {
	b       *broker.Broker
	caches  *cache.Store
	dataDir string
	applier *BrokerApplier

	mu      sync.Mutex
	removed []broker.StreamKey // what StreamsRemoved reported, in order
}

func newBrokerRig(t *testing.T) *brokerRig {
	t.Helper()
	r := &brokerRig{b: broker.New(broker.Options{}), caches: cache.NewStore(cache.StoreOptions{SweepInterval: -1}), dataDir: t.TempDir()}
	t.Cleanup(func() { r.b.Close(); r.caches.Close() })
	var err error
	r.applier, err = NewBrokerApplier(BrokerApplierOptions{Broker: r.b, Caches: r.caches, DataDir: r.dataDir,
		Log: commitlog.Options{Logger: quiet}, Logger: quiet,
		StreamsRemoved: func(keys []broker.StreamKey) {
			r.mu.Lock()
			r.removed = append(r.removed, keys...)
			r.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *brokerRig) stream(t, ns, s string) *broker.Stream {
	st, err := r.b.Stream(t, ns, s)
	if err != nil {
		return nil
	}
	return st
}

func newTestFollower(t *testing.T, src Source, a Applier) *Follower {
	t.Helper()
	f, err := NewFollower(FollowerOptions{Source: src, Applier: a, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustSync(t *testing.T, f *Follower) {
	t.Helper()
	if err := f.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestFollowerOverHTTP drives a broker from the HTTP API: streams and
// caches appear after a Sync, a durability flip on a stream with data is
// refused and reported without blocking later changes, and deleting a
// namespace removes its streams, logs and caches from the broker.
func TestFollowerOverHTTP(t *testing.T) {
	hs := startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{}))
	c := newClient(t, hs)
	rig := newBrokerRig(t)
	f := newTestFollower(t, NewHTTPSource(hs.URL, testToken, nil), rig.applier)
	if f.Ready() {
		t.Fatal("ready before the first sync")
	}
	select {
	case <-f.ReadyC():
		t.Fatal("ReadyC closed before the first sync")
	default:
	}
	mustSync(t, f)
	if !f.Ready() {
		t.Fatal("not ready after the first sync")
	}
	select {
	case <-f.ReadyC():
	default:
		t.Fatal("ReadyC still open after the first sync")
	}

	c.must("POST", "/v1/tenants", Tenant{TenantID: "acme"}, http.StatusCreated, nil)
	c.must("POST", "/v1/tenants/acme/namespaces", map[string]string{"namespace": "orders"}, http.StatusCreated, nil)
	base := "/v1/tenants/acme/namespaces/orders"
	c.must("POST", base+"/streams", map[string]any{"stream": "live"}, http.StatusCreated, nil)
	c.must("POST", base+"/streams", map[string]any{"stream": "jobs", "durable": true, "fsync": "always"}, http.StatusCreated, nil)
	c.must("POST", base+"/caches", map[string]any{"cache": "sessions", "capacity_bytes": 4096}, http.StatusCreated, nil)
	if rig.stream("acme", "orders", "live") != nil {
		t.Fatal("stream applied before a sync")
	}
	mustSync(t, f)
	live, jobs := rig.stream("acme", "orders", "live"), rig.stream("acme", "orders", "jobs")
	if live == nil || live.IsDurable() || jobs == nil || !jobs.IsDurable() {
		t.Fatalf("after sync: live %v, jobs %v", live, jobs)
	}
	jobsDir := StreamDir(rig.dataDir, jobs.Key())
	if _, err := os.Stat(jobsDir); err != nil {
		t.Fatalf("durable log directory: %v", err)
	}
	if ca, err := rig.caches.Get(cache.Scope{Tenant: "acme", Namespace: "orders", Cache: "sessions"}); err != nil || ca.Config().MaxBytes != 4096 {
		t.Fatalf("cache after sync: %v", err)
	}

	// jobs holds data: flipping it to in-memory is refused and reported.
	if _, err := jobs.Publish(t.Context(), [][]byte{[]byte("job-1")}); err != nil {
		t.Fatal(err)
	}
	c.must("PATCH", base+"/streams/jobs", map[string]any{"durable": false}, http.StatusOK, nil)
	c.must("PATCH", base+"/streams/live", map[string]any{"durable": true}, http.StatusOK, nil) // empty: recreated
	c.must("POST", base+"/streams", map[string]any{"stream": "later"}, http.StatusCreated, nil)
	c.must("PATCH", base+"/caches/sessions", map[string]any{"capacity_bytes": 8192}, http.StatusOK, nil)
	mustSync(t, f)
	if s := rig.stream("acme", "orders", "jobs"); s != jobs || !s.IsDurable() {
		t.Fatal("jobs was replaced despite holding data")
	}
	if s := rig.stream("acme", "orders", "live"); s == nil || !s.IsDurable() {
		t.Fatal("empty stream live not recreated as durable")
	}
	if rig.stream("acme", "orders", "later") == nil {
		t.Fatal("a change after the failed one was held back")
	}
	if ca, _ := rig.caches.Get(cache.Scope{Tenant: "acme", Namespace: "orders", Cache: "sessions"}); ca == nil || ca.Config().MaxBytes != 8192 {
		t.Fatal("cache capacity change not applied")
	}
	st := f.Stats()
	if len(st.Failed) != 1 || st.Failed[0].Key.Stream != "jobs" || !strings.Contains(st.Failed[0].Error, "durable true → false") {
		t.Fatalf("failed objects %+v", st.Failed)
	}
	mustSync(t, f) // retried, still failing
	if st := f.Stats(); len(st.Failed) != 1 || st.Failed[0].Attempts != 2 || st.ApplyErrors != 2 {
		t.Fatalf("after retry: %+v", st)
	}

	// Deleting the namespace removes everything under it from the broker.
	c.must("DELETE", base, nil, http.StatusNoContent, nil)
	mustSync(t, f)
	for _, name := range []string{"live", "jobs", "later"} {
		if rig.stream("acme", "orders", name) != nil {
			t.Fatalf("stream %s survived its namespace", name)
		}
	}
	if _, err := jobs.Publish(t.Context(), [][]byte{[]byte("x")}); !errors.Is(err, broker.ErrStreamDeleted) {
		t.Fatalf("publish to a deleted stream: %v", err)
	}
	if _, err := os.Stat(jobsDir); !os.IsNotExist(err) {
		t.Fatalf("log directory of a deleted stream: %v", err)
	}
	if len(rig.caches.Caches()) != 0 {
		t.Fatal("cache survived its namespace")
	}
	if _, err := rig.b.CreateStream("acme", "orders", "x"); !errors.Is(err, broker.ErrNamespaceNotFound) {
		t.Fatalf("namespace still in the broker: %v", err)
	}
	if st := f.Stats(); len(st.Failed) != 0 || st.SyncErrors != 0 || st.Syncs != 5 {
		t.Fatalf("final stats %+v", st)
	}
}

// TestFollowerResyncReconciles: the follower falls behind a short change
// log, gets 410, takes a new snapshot and removes what is gone.
func TestFollowerResyncReconciles(t *testing.T) {
	store := openTestStore(t, t.TempDir(), StoreOptions{ChangeRetention: 5})
	hs := startAPI(t, store)
	c := newClient(t, hs)
	rig := newBrokerRig(t)
	f := newTestFollower(t, NewHTTPSource(hs.URL, testToken, nil), rig.applier)
	c.must("POST", "/v1/tenants", Tenant{TenantID: "t"}, http.StatusCreated, nil)
	c.must("POST", "/v1/tenants/t/namespaces", map[string]string{"namespace": "n"}, http.StatusCreated, nil)
	c.must("POST", "/v1/tenants/t/namespaces/n/streams", map[string]any{"stream": "doomed"}, http.StatusCreated, nil)
	mustSync(t, f)
	if rig.stream("t", "n", "doomed") == nil {
		t.Fatal("stream not applied")
	}
	c.must("DELETE", "/v1/tenants/t/namespaces/n/streams/doomed", nil, http.StatusNoContent, nil)
	for i := range 8 {
		c.must("POST", "/v1/tenants/t/namespaces/n/streams", map[string]any{"stream": fmt.Sprint("s", i)}, http.StatusCreated, nil)
	}
	mustSync(t, f)
	st := f.Stats()
	if st.Resyncs != 1 || st.NextSeq != 13 {
		t.Fatalf("stats after falling behind: %+v", st)
	}
	if rig.stream("t", "n", "doomed") != nil {
		t.Fatal("resync kept a stream the control plane deleted")
	}
	for i := range 8 {
		if rig.stream("t", "n", fmt.Sprint("s", i)) == nil {
			t.Fatalf("stream s%d missing after resync", i)
		}
	}
}

// TestFollowerInProcess follows the Store directly; Run wakes at each
// commit, so no tick is needed.
func TestFollowerInProcess(t *testing.T) {
	store := openTestStore(t, t.TempDir(), StoreOptions{})
	rig := newBrokerRig(t)
	tick := make(chan time.Time)
	f, err := NewFollower(FollowerOptions{Source: store, Applier: rig.applier, Logger: quiet,
		NewTicker: func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if _, err := store.CreateTenant(Tenant{TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "s"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rig.stream("t", "n", "s") == nil {
		if time.Now().After(deadline) {
			t.Fatalf("stream never applied: %+v", f.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !f.Ready() {
		t.Fatal("applied but not ready")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// The applier reports every stream it removes (delete, namespace delete,
// tenant delete) to StreamsRemoved, so the server can drop the streams'
// consumer groups.
func TestApplierReportsRemovedStreams(t *testing.T) {
	rig := newBrokerRig(t)
	a := rig.applier
	for _, s := range []Stream{
		{TenantID: "acme", Namespace: "orders", Stream: "a", Durable: true, Fsync: "never"},
		{TenantID: "acme", Namespace: "orders", Stream: "b"},
		{TenantID: "acme", Namespace: "billing", Stream: "c"},
	} {
		if err := a.EnsureStream(s); err != nil {
			t.Fatal(err)
		}
	}
	took := func() []broker.StreamKey {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		out := rig.removed
		rig.removed = nil
		slices.SortFunc(out, func(x, y broker.StreamKey) int { return strings.Compare(x.String(), y.String()) })
		return out
	}
	if err := a.DeleteStream(StreamKey{"acme", "orders", "a"}); err != nil {
		t.Fatal(err)
	}
	if got, want := took(), []broker.StreamKey{{Tenant: "acme", Namespace: "orders", Stream: "a"}}; !slices.Equal(got, want) {
		t.Fatalf("after a stream delete: %v, want %v", got, want)
	}
	if err := a.DeleteNamespace(NamespaceKey{"acme", "orders"}); err != nil {
		t.Fatal(err)
	}
	if got, want := took(), []broker.StreamKey{{Tenant: "acme", Namespace: "orders", Stream: "b"}}; !slices.Equal(got, want) {
		t.Fatalf("after a namespace delete: %v, want %v", got, want)
	}
	if err := a.DeleteTenant("acme"); err != nil {
		t.Fatal(err)
	}
	if got, want := took(), []broker.StreamKey{{Tenant: "acme", Namespace: "billing", Stream: "c"}}; !slices.Equal(got, want) {
		t.Fatalf("after a tenant delete: %v, want %v", got, want)
	}
}

// Deleting a namespace or tenant through the control plane removes what
// the control plane declared, not the streams (and their logs) and caches
// the broker's own flags declared there; the namespace stays while it
// holds them.
func TestApplierKeepsFlagDeclaredOnScopeDelete(t *testing.T) {
	rig := newBrokerRig(t)
	a := rig.applier
	// Declared by flags: a durable stream with its log, and a cache.
	flagDir := filepath.Join(rig.dataDir, "flag-log")
	lg, err := commitlog.Open(flagDir, commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rig.b.DeclareLoggedStream("acme", "orders", "kept", broker.StreamOptions{Log: lg, Durable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := rig.caches.Create(cache.Scope{Tenant: "acme", Namespace: "orders", Cache: "kept"}, cache.Config{}); err != nil {
		t.Fatal(err)
	}
	// Declared by the control plane.
	if err := a.EnsureStream(Stream{TenantID: "acme", Namespace: "orders", Stream: "cp", Durable: true, Fsync: "never"}); err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureCache(Cache{TenantID: "acme", Namespace: "orders", Cache: "cp"}); err != nil {
		t.Fatal(err)
	}
	for _, del := range []func() error{
		func() error { return a.DeleteNamespace(NamespaceKey{"acme", "orders"}) },
		func() error { return a.DeleteTenant("acme") },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
		if rig.stream("acme", "orders", "cp") != nil {
			t.Fatal("the control plane's stream survived")
		}
		if _, err := rig.caches.Get(cache.Scope{Tenant: "acme", Namespace: "orders", Cache: "cp"}); err == nil {
			t.Fatal("the control plane's cache survived")
		}
		if rig.stream("acme", "orders", "kept") == nil {
			t.Fatal("the flag-declared stream was deleted")
		}
		if _, err := os.Stat(flagDir); err != nil {
			t.Fatalf("the flag-declared stream's log: %v", err)
		}
		if _, err := rig.caches.Get(cache.Scope{Tenant: "acme", Namespace: "orders", Cache: "kept"}); err != nil {
			t.Fatalf("the flag-declared cache: %v", err)
		}
	}
	if _, err := os.Stat(StreamDir(rig.dataDir, broker.StreamKey{Tenant: "acme", Namespace: "orders", Stream: "cp"})); !os.IsNotExist(err) {
		t.Fatalf("the control plane's stream log is still there: %v", err)
	}
}
