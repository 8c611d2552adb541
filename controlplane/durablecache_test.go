package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
)

// cacheRig is a broker's cache store and applier on a data directory;
// restart closes them and opens new ones on the same directory.
type cacheRig struct {
	t       *testing.T
	dataDir string
	b       *broker.Broker
	caches  *cache.Store
	applier *BrokerApplier
}

func openCacheRig(t *testing.T, dataDir string) *cacheRig {
	t.Helper()
	r := &cacheRig{t: t, dataDir: dataDir, b: broker.New(broker.Options{}), caches: cache.NewStore(cache.StoreOptions{SweepInterval: -1})}
	t.Cleanup(r.close)
	var err error
	r.applier, err = NewBrokerApplier(BrokerApplierOptions{Broker: r.b, Caches: r.caches, DataDir: dataDir,
		Log: commitlog.Options{Sync: commitlog.SyncAlways, Logger: quiet}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *cacheRig) close() { r.caches.Close(); r.b.Close() }

func (r *cacheRig) restart() *cacheRig {
	r.close()
	return openCacheRig(r.t, r.dataDir)
}

// get returns the cache under k, or nil.
func (r *cacheRig) get(k CacheKey) *cache.Cache {
	c, err := r.caches.Get(k.scope())
	if err != nil {
		return nil
	}
	return c
}

func (r *cacheRig) ensure(c Cache) *cache.Cache {
	r.t.Helper()
	if err := r.applier.EnsureCache(c); err != nil {
		r.t.Fatalf("EnsureCache %+v: %v", c, err)
	}
	return r.get(c.Key())
}

// putN writes k00.. k<n-1> with 10-byte values.
func putN(t *testing.T, c *cache.Cache, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.Put(fmt.Sprintf("k%02d", i), []byte("0123456789"), cache.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// keys lists the live keys among k00.. k99.
func keys(c *cache.Cache) []string {
	var out []string
	for i := range 100 {
		k := fmt.Sprintf("k%02d", i)
		if _, ok := c.Get(k); ok {
			out = append(out, k)
		}
	}
	return out
}

// entry is the accounted size of an entry putN writes.
var entry = int64(cache.EntryOverhead + len("k00") + len("0123456789"))

var durableSessions = Cache{TenantID: "t", Namespace: "n", Cache: "sessions", Durable: true}

// A durable cache is created in <data-dir>/caches (the directory of
// felix serve --durable-cache) under the applier's fsync policy and keeps
// its entries across a restart.
func TestApplierDurableCacheSurvivesRestart(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	c := r.ensure(durableSessions)
	if c == nil || !c.Durable() {
		t.Fatalf("cache %v, want a durable one", c)
	}
	putN(t, c, 3)
	if fi, err := os.Stat(CacheDir(r.dataDir, durableSessions.Key().scope())); err != nil || !fi.IsDir() {
		t.Fatalf("log directory: %v", err)
	}
	r = r.restart()
	c = r.ensure(durableSessions)
	if got := keys(c); len(got) != 3 || !c.Durable() {
		t.Fatalf("after a restart: keys %v, durable %v; want k00-k02 in a durable cache", got, c.Durable())
	}
}

// A capacity patch resizes a durable cache in place: its entries stay (a
// raised capacity), or it evicts down to the lowered capacity, logged, so
// the evicted entries stay gone after a restart.
func TestApplierDurableCacheResize(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	want := durableSessions
	want.CapacityBytes = 20 * entry
	putN(t, r.ensure(want), 20)

	want.CapacityBytes = 40 * entry
	c := r.ensure(want)
	if got := keys(c); len(got) != 20 || c.Config().MaxBytes != 40*entry {
		t.Fatalf("raised: %d keys, capacity %d; want 20 and %d", len(got), c.Config().MaxBytes, 40*entry)
	}
	want.CapacityBytes = 5 * entry
	c = r.ensure(want)
	kept := keys(c)
	if st := c.Stats(); len(kept) != 5 || st.Bytes > 5*entry || st.Evictions != 15 {
		t.Fatalf("lowered to 5 entries: keys %v, stats %+v", kept, st)
	}

	r = r.restart()
	want.CapacityBytes = 0 // nothing evicted at load: the log alone decides
	if got := keys(r.ensure(want)); strings.Join(got, ",") != strings.Join(kept, ",") {
		t.Fatalf("after a restart: keys %v, want %v", got, kept)
	}
}

// Deleting a durable cache closes its log and removes its directory; a
// cache created again under the name starts empty, also after a restart.
func TestApplierDurableCacheDelete(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	putN(t, r.ensure(durableSessions), 3)
	dir := CacheDir(r.dataDir, durableSessions.Key().scope())
	if err := r.applier.DeleteCache(durableSessions.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log directory after the delete: %v, want it removed", err)
	}
	if r.get(durableSessions.Key()) != nil {
		t.Fatal("the cache is still in the store")
	}
	if got := keys(r.ensure(durableSessions)); len(got) != 0 {
		t.Fatalf("created again: keys %v, want none", got)
	}
	r = r.restart()
	if got := keys(r.ensure(durableSessions)); len(got) != 0 {
		t.Fatalf("created again, after a restart: keys %v, want none", got)
	}

	// Deleting the namespace deletes its durable caches the same way.
	putN(t, r.get(durableSessions.Key()), 1)
	if err := r.applier.DeleteNamespace(NamespaceKey{"t", "n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) || r.get(durableSessions.Key()) != nil {
		t.Fatalf("after the namespace's delete: log directory %v, cache %v; want both gone", err, r.get(durableSessions.Key()))
	}
}

// A durability flip recreates the cache only while it holds no entry, as
// for a stream with no records; with entries it fails with
// ErrRecreateRequired and the cache stays as it was.
func TestApplierCacheDurabilityFlip(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	mem := durableSessions
	mem.Durable = false
	putN(t, r.ensure(mem), 1)
	var rre *CacheRecreateRequiredError
	if err := r.applier.EnsureCache(durableSessions); !errors.As(err, &rre) || !errors.Is(err, ErrRecreateRequired) || rre.Key != mem.Key() {
		t.Fatalf("in memory → durable with an entry: %v, want a *CacheRecreateRequiredError", err)
	}
	if c := r.get(mem.Key()); c.Durable() || len(keys(c)) != 1 {
		t.Fatal("the refused flip changed the cache")
	}
	r.get(mem.Key()).Delete("k00")
	c := r.ensure(durableSessions)
	if !c.Durable() {
		t.Fatal("empty in-memory cache not made durable")
	}
	putN(t, c, 2)
	if err := r.applier.EnsureCache(mem); !errors.Is(err, ErrRecreateRequired) {
		t.Fatalf("durable → in memory with entries: %v, want ErrRecreateRequired", err)
	}
	if c := r.get(mem.Key()); !c.Durable() || len(keys(c)) != 2 {
		t.Fatal("the refused flip changed the cache")
	}
	c.Delete("k00")
	c.Delete("k01")
	if c = r.ensure(mem); c.Durable() {
		t.Fatal("empty durable cache not made in-memory")
	}
	if _, err := os.Stat(CacheDir(r.dataDir, mem.Key().scope())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log directory of the cache made in-memory: %v, want it removed", err)
	}
}

// After a restart the broker may hold a durable cache's name in memory
// first (a --cache flag, an auto-create) while its log is on disk: the
// control plane's durable cache replaces the empty in-memory one in one
// step and loads the log, as a durable stream's flip opens its log.
func TestApplierFlipToDurableCacheLoadsTheLogOnDisk(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	putN(t, r.ensure(durableSessions), 3)
	r = r.restart()
	if _, err := r.caches.Create(durableSessions.Key().scope(), cache.Config{}); err != nil {
		t.Fatal(err)
	}
	if c := r.ensure(durableSessions); !c.Durable() || len(keys(c)) != 3 {
		t.Fatalf("after the flip: durable %v, keys %v; want the durable cache with its 3 entries", c.Durable(), keys(c))
	}
}

// A cache declared durable by the broker's flags (--durable-cache opens
// its log in CacheDir) and by the control plane is adopted as it is, log
// and entries; a capacity patch resizes it; the control plane's delete
// removes it with its log.
func TestApplierAdoptsFlagDurableCache(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	scope := durableSessions.Key().scope()
	flag, err := r.caches.CreateDurable(scope, cache.Config{}, cache.DurableOptions{Dir: CacheDir(r.dataDir, scope), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	putN(t, flag, 3)
	if c := r.ensure(durableSessions); c != flag {
		t.Fatal("the flag's durable cache was not adopted as it is")
	}
	resized := durableSessions
	resized.CapacityBytes = 2 * entry
	if c := r.ensure(resized); len(keys(c)) != 2 || !c.Durable() {
		t.Fatalf("resized: keys %v, want 2 of a durable cache", keys(c))
	}
	if err := r.applier.DeleteCache(durableSessions.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(CacheDir(r.dataDir, scope)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log directory: %v, want it removed", err)
	}
}

// Without a data directory a durable cache fails to apply.
func TestApplierDurableCacheNeedsDataDir(t *testing.T) {
	r := openCacheRig(t, "")
	if err := r.applier.EnsureCache(durableSessions); err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("EnsureCache without a data directory: %v", err)
	}
}

// Through the API: durable is stored and served, a capacity PATCH
// resizes the broker's durable cache keeping its entries, a durability
// PATCH on a cache with entries is stored but fails to apply (kept as
// failed by the follower, as a stream's), and DELETE removes the log.
func TestAPIDurableCache(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	c := newClient(t, startAPI(t, st))
	c.must("POST", "/v1/tenants", Tenant{TenantID: "t"}, http.StatusCreated, nil)
	c.must("POST", "/v1/tenants/t/namespaces", map[string]string{"namespace": "n"}, http.StatusCreated, nil)
	base := "/v1/tenants/t/namespaces/n/caches"
	var ca Cache
	c.must("POST", base, map[string]any{"cache": "sessions", "durable": true, "capacity_bytes": 10 * entry}, http.StatusCreated, &ca)
	if !ca.Durable {
		t.Fatalf("created %+v, want durable", ca)
	}
	c.must("POST", base, map[string]any{"cache": "plain"}, http.StatusCreated, &ca)
	if ca.Durable {
		t.Fatalf("created %+v, want durable false by default", ca)
	}

	r := openCacheRig(t, t.TempDir())
	f := newTestFollower(t, st, r.applier)
	mustSync(t, f)
	k := durableSessions.Key()
	dc := r.get(k)
	if dc == nil || !dc.Durable() {
		t.Fatal("the durable cache was not applied")
	}
	putN(t, dc, 10)
	c.must("PATCH", base+"/sessions", map[string]any{"capacity_bytes": 4 * entry}, http.StatusOK, &ca)
	mustSync(t, f)
	if got := keys(r.get(k)); len(got) != 4 {
		t.Fatalf("after the capacity PATCH: keys %v, want 4 kept", got)
	}
	c.must("PATCH", base+"/sessions", map[string]any{"durable": false}, http.StatusOK, &ca)
	if ca.Durable || ca.CapacityBytes != 4*entry {
		t.Fatalf("patched %+v", ca)
	}
	mustSync(t, f)
	if fs := f.Stats().Failed; len(fs) != 1 || fs[0].Kind != ObjectCache || !strings.Contains(fs[0].Error, "recreated") {
		t.Fatalf("failed objects %+v, want the cache refused for its entries", fs)
	}
	if !r.get(k).Durable() {
		t.Fatal("the refused flip changed the cache")
	}
	c.must("DELETE", base+"/sessions", nil, http.StatusNoContent, nil)
	mustSync(t, f)
	if _, err := os.Stat(CacheDir(r.dataDir, k.scope())); !errors.Is(err, os.ErrNotExist) || r.get(k) != nil {
		t.Fatalf("after DELETE: log directory %v, cache %v; want both gone", err, r.get(k))
	}
}
