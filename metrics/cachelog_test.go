package metrics

import (
	"errors"
	"fmt"
	"testing"

	"github.com/felixmq/felix/cache"
)

// A durable cache exports its log's size, write failures and compactions
// (felix_cache_log_*); an in-memory cache does not have those series.
func TestScrapeDurableCacheLog(t *testing.T) {
	st := cache.NewStore(cache.StoreOptions{})
	defer st.Close()
	durable := cache.Scope{Tenant: "t", Namespace: "ns", Cache: "sessions"}
	mem := cache.Scope{Tenant: "t", Namespace: "ns", Cache: "scratch"}
	c, err := st.CreateDurable(durable, cache.Config{}, cache.DurableOptions{Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(mem, cache.Config{}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.Put(fmt.Sprintf("k%d", i), make([]byte, 100), cache.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Options{Sources: Sources{Caches: st}})
	labels := []string{"tenant", "t", "namespace", "ns", "cache", "sessions"}
	f := scrape(t, s)
	if v, want := f.value(t, "felix_cache_memory_bytes"), float64(c.Stats().Bytes); v != want {
		t.Errorf("felix_cache_memory_bytes = %v, want the caches' %v", v, want)
	}
	if v := f.value(t, "felix_cache_memory_limit_bytes"); v != cache.DefaultMaxTotalBytes {
		t.Errorf("felix_cache_memory_limit_bytes = %v, want the default %d", v, cache.DefaultMaxTotalBytes)
	}
	if v := f.value(t, "felix_cache_log_bytes", labels...); v < 20*100 {
		t.Errorf("felix_cache_log_bytes = %v, want at least the 20 values' 2000 bytes", v)
	}
	if v := f.value(t, "felix_cache_log_compactions_total", labels...); v != 1 {
		t.Errorf("felix_cache_log_compactions_total = %v, want 1", v)
	}
	if v := f.value(t, "felix_cache_log_write_errors_total", labels...); v != 0 {
		t.Errorf("felix_cache_log_write_errors_total = %v, want 0", v)
	}
	for _, name := range []string{"felix_cache_log_bytes", "felix_cache_log_compactions_total", "felix_cache_log_write_errors_total"} {
		if f.find(name, "cache", "scratch") != nil {
			t.Errorf("%s exported for an in-memory cache", name)
		}
	}
	if f.find("felix_cache_puts_total", "cache", "scratch") == nil {
		t.Error("the in-memory cache's series are missing")
	}

	// A closed log refuses writes: each refused put is counted.
	st.Close()
	for range 2 {
		if _, err := c.Put("k0", []byte("x"), cache.PutOptions{}); !errors.Is(err, cache.ErrStorage) {
			t.Fatalf("put to a closed log: %v, want ErrStorage", err)
		}
	}
	f = scrape(t, s)
	if v := f.value(t, "felix_cache_log_write_errors_total", labels...); v != 2 {
		t.Errorf("felix_cache_log_write_errors_total = %v after 2 refused puts, want 2", v)
	}
}

// Durable caches, declared by the operator, are exported before caches
// clients create by naming them, as durable streams are.
func TestMetricsCapKeepsDurableCaches(t *testing.T) {
	st := cache.NewStore(cache.StoreOptions{})
	defer st.Close()
	if _, err := st.CreateDurable(cache.Scope{Tenant: "zz", Namespace: "ops", Cache: "kv"}, cache.Config{},
		cache.DurableOptions{Dir: t.TempDir(), Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	const extra = 3
	for i := range MaxMetricObjects + extra {
		if _, err := st.Create(cache.Scope{Tenant: "a", Namespace: "ns", Cache: fmt.Sprintf("c%05d", i)}, cache.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, Options{Sources: Sources{Caches: st}})
	f := scrape(t, s)
	if n := len(f["felix_cache_puts_total"].GetMetric()); n != MaxMetricObjects {
		t.Errorf("%d caches exported, want %d", n, MaxMetricObjects)
	}
	if f.find("felix_cache_log_bytes", "tenant", "zz", "cache", "kv") == nil {
		t.Error("the durable cache was crowded out by in-memory ones")
	}
	if v := f.value(t, "felix_metrics_objects_omitted", "kind", "cache"); v != extra+1 {
		t.Errorf("omitted caches = %v, want %d", v, extra+1)
	}
}
