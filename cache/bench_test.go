package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestHotPathAllocations pins the hot path's allocations: reads none, a
// write only its stored copy.
func TestHotPathAllocations(t *testing.T) {
	c, _ := newTestCache(t, Config{MaxBytes: 1 << 20})
	value := make([]byte, 256)
	mustPut(t, c, "k", string(value), PutOptions{TTL: new(time.Hour)})
	mustPut(t, c, "plain", string(value), PutOptions{})
	ttl := time.Hour
	for _, tc := range []struct {
		name string
		want float64
		f    func()
	}{
		{"Get", 0, func() { c.Get("k") }},
		{"Get miss", 0, func() { c.Get("absent") }},
		{"GetWithMeta", 0, func() { c.GetWithMeta("k") }},
		{"TTL", 0, func() { c.TTL("k") }},
		{"Delete miss", 0, func() { c.Delete("absent") }},
		{"Put overwrite", 1, func() { c.Put("plain", value, PutOptions{}) }},
		{"Put overwrite with TTL", 1, func() { c.Put("k", value, PutOptions{TTL: &ttl}) }},
	} {
		if got := testing.AllocsPerRun(1000, tc.f); got != tc.want {
			t.Errorf("%s: %v allocs per run, want %v", tc.name, got, tc.want)
		}
	}
}

// benchCache is a cache holding 10k keys of 256-byte values, in a Store
// with the default budget.
func benchCache(b *testing.B, cfg Config) (*Cache, []string, []byte) {
	return benchCacheIn(b, cfg, 0)
}

// benchCacheIn is benchCache in a Store whose MaxTotalBytes is budget (0:
// the default, negative: none).
func benchCacheIn(b *testing.B, cfg Config, budget int64) (*Cache, []string, []byte) {
	st := NewStore(StoreOptions{Clock: newFakeClock(), SweepInterval: -1, MaxTotalBytes: budget})
	b.Cleanup(st.Close)
	c, err := st.Create(testScope, cfg)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 10_000)
	value := make([]byte, 256)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-key-%05d", i)
		if _, err := c.Put(keys[i], value, PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return c, keys, value
}

func BenchmarkGet(b *testing.B) {
	c, keys, _ := benchCache(b, Config{})
	b.ReportAllocs()
	b.SetBytes(256)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if _, ok := c.Get(keys[rng.IntN(len(keys))]); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// budgets are the Store budgets the write benchmarks run under: the
// default, and none (no shared counter to reserve from).
var budgets = []struct {
	name  string
	bytes int64
}{{"budget=1GiB", 0}, {"budget=off", -1}}

// benchBudgets runs f under each of budgets.
func benchBudgets(b *testing.B, f func(b *testing.B, budget int64)) {
	for _, bg := range budgets {
		b.Run(bg.name, func(b *testing.B) { f(b, bg.bytes) })
	}
}

func BenchmarkPut(b *testing.B) {
	benchBudgets(b, func(b *testing.B, budget int64) { benchPut(b, Config{}, budget, false) })
}

// BenchmarkPutVarying overwrites with values of 200 and 300 bytes in
// turn, so every write reserves (or gives back) bytes: the budget's
// shared counter is taken each time.
func BenchmarkPutVarying(b *testing.B) {
	benchBudgets(b, func(b *testing.B, budget int64) { benchPut(b, Config{}, budget, true) })
}

// BenchmarkPutEvicting writes into a cache that holds half the key set, so
// most writes evict.
func BenchmarkPutEvicting(b *testing.B) {
	benchPut(b, Config{MaxBytes: 5000 * entrySize("bench-key-00000", 256)}, 0, false)
}

// benchPut overwrites random keys of benchCache's set from every P, with
// values of 200 and 300 bytes in turn if varying.
func benchPut(b *testing.B, cfg Config, budget int64, varying bool) {
	c, keys, value := benchCacheIn(b, cfg, budget)
	values := [][]byte{value, value}
	if varying {
		values = [][]byte{make([]byte, 200), make([]byte, 300)}
	}
	b.ReportAllocs()
	b.SetBytes(256)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for i := 0; pb.Next(); i++ {
			if _, err := c.Put(keys[rng.IntN(len(keys))], values[i&1], PutOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMixed90Get10Put(b *testing.B) {
	benchBudgets(b, benchMixed)
}

// benchMixed is BenchmarkMixed90Get10Put under budget.
func benchMixed(b *testing.B, budget int64) {
	c, keys, value := benchCacheIn(b, Config{}, budget)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 4))
		for pb.Next() {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(10) == 0 {
				c.Put(k, value, PutOptions{})
			} else {
				c.Get(k)
			}
		}
	})
}

// BenchmarkScanPage measures one cache_scan page of 1,000 keys from the
// middle of caches of 10k and 100k keys: a page passes over every key.
func BenchmarkScanPage(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			c, _ := newTestCache(b, Config{})
			for i := range n {
				if _, err := c.Put(fmt.Sprintf("key-%06d", i), []byte("v"), PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			cursor := fmt.Sprintf("key-%06d", n/2)
			b.ReportAllocs()
			for b.Loop() {
				p, err := c.Scan(ScanOptions{Cursor: cursor, Limit: 1000})
				if err != nil || len(p.Keys) != 1000 {
					b.Fatalf("page of %d keys, %v", len(p.Keys), err)
				}
			}
		})
	}
}
