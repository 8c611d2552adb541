package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// modelEntry is the model's view of one key.
type modelEntry struct {
	value   string
	version uint64
	expires time.Duration // since the start; 0 = never
}

// The engine against a plain map, on a fake clock, through random puts
// (every TTL edge: none, ≤ 0, 1 ns, huge; IfAbsent, IfVersion 0 / current
// / stale), gets, multi-gets, TTLs, deletes, clock steps and sweeps, on
// one shard so that tables compact under the operations: every answer and
// the deterministic counters match.
func TestHunt4ModelCheck(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { modelCheck(t, seed) })
	}
}

func modelCheck(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 4))
	c, clk := newTestCache(t, Config{Shards: 1})
	start := clk.Now()
	model := map[string]modelEntry{}
	var want Stats
	now := func() time.Duration { return clk.Now().Sub(start) }
	live := func(k string) (modelEntry, bool) {
		e, ok := model[k]
		if ok && e.expires != 0 && e.expires <= now() {
			return modelEntry{}, false
		}
		return e, ok
	}
	nkeys := 3000
	if seed%2 == 0 {
		nkeys = 40
	}
	key := func() string { return fmt.Sprint("k", rng.IntN(nkeys)) }
	ttls := []time.Duration{0, -time.Second, 1, time.Millisecond, time.Second, time.Hour, time.Duration(1<<63 - 1)}
	for op := range 30_000 {
		switch r := rng.IntN(100); {
		case r < 45:
			k, v := key(), fmt.Sprint("v", op)
			var opt PutOptions
			if rng.IntN(2) == 0 {
				opt.TTL = new(ttls[rng.IntN(len(ttls))])
			}
			cur, exists := live(k)
			switch rng.IntN(6) {
			case 0:
				opt.IfAbsent = true
			case 1:
				opt.IfVersion = new(uint64) // 0: must not exist
			case 2:
				opt.IfVersion = new(cur.version)
			case 3:
				opt.IfVersion = new(cur.version + 1)
			}
			ver, err := c.Put(k, []byte(v), opt)
			fails := (opt.IfAbsent && exists) || (opt.IfVersion != nil && *opt.IfVersion != cur.version)
			if fails {
				if err == nil {
					t.Fatalf("op %d: Put %q %+v succeeded over %+v", op, k, opt, cur)
				}
				want.ConditionFailed++
				continue
			}
			if err != nil || ver <= cur.version {
				t.Fatalf("op %d: Put %q %+v = %d, %v (current %+v)", op, k, opt, ver, err, cur)
			}
			want.Puts++
			e := modelEntry{value: v, version: ver}
			if opt.TTL != nil {
				if *opt.TTL <= 0 {
					delete(model, k)
					continue
				}
				e.expires = time.Duration(deadline(int64(now()), *opt.TTL)) // saturated, as the cache's epoch is start
			}
			model[k] = e
		case r < 70:
			k := key()
			it, ok := c.GetWithMeta(k)
			e, wok := live(k)
			if ok != wok || (ok && (string(it.Value) != e.value || it.Version != e.version)) {
				t.Fatalf("op %d: Get %q = %q v%d %v; model %+v %v", op, k, it.Value, it.Version, ok, e, wok)
			}
			if ok {
				want.Hits++
			} else {
				want.Misses++
			}
		case r < 75:
			keys := []string{key(), key(), key()}
			items := c.MultiGet(keys)
			for i, k := range keys {
				e, wok := live(k)
				if items[i].OK != wok || (wok && string(items[i].Value) != e.value) {
					t.Fatalf("op %d: MultiGet %q = %+v; model %+v %v", op, k, items[i], e, wok)
				}
				if wok {
					want.Hits++
				} else {
					want.Misses++
				}
			}
		case r < 80:
			k := key()
			rem, has, ok := c.TTL(k)
			e, wok := live(k)
			if ok != wok || has != (wok && e.expires != 0) || (has && rem != e.expires-now()) {
				t.Fatalf("op %d: TTL %q = %v %v %v; model %+v %v at %v", op, k, rem, has, ok, e, wok, now())
			}
		case r < 90:
			k := key()
			_, wok := live(k)
			if got := c.Delete(k); got != wok {
				t.Fatalf("op %d: Delete %q = %v, want %v", op, k, got, wok)
			}
			if wok {
				want.Deletes++
			}
			delete(model, k)
		case r < 96:
			clk.Advance(time.Duration(rng.IntN(3)) * time.Millisecond * time.Duration(rng.IntN(1000)))
		default:
			c.Sweep(rng.IntN(2000))
		}
		if op%5000 == 0 {
			checkInvariants(t, c)
		}
	}
	checkInvariants(t, c)
	got := c.Stats()
	if got.Hits != want.Hits || got.Misses != want.Misses || got.Puts != want.Puts || got.Deletes != want.Deletes || got.ConditionFailed != want.ConditionFailed {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	c.Sweep(1 << 30) // finishes the pass in progress
	c.Sweep(1 << 30) // a whole pass
	n := 0
	for k := range model {
		if _, ok := live(k); ok {
			n++
		}
	}
	if got := c.Stats().Entries; got != int64(n) {
		t.Fatalf("%d entries after a full sweep, model has %d live", got, n)
	}
}
