package cache

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// hunt18Entry is the model's view of one key: its value, version and
// deadline in nanoseconds since the cache's epoch (never: none).
type hunt18Entry struct {
	value   string
	version uint64
	expires int64
}

// The engine against a plain map, on a fake clock that also steps back,
// through the operations the first model (TestHunt4ModelCheck) leaves
// out: increments (around MaxInt64 and MinInt64, on values that are not
// integers, on expired keys, with TTLs), Expire (huge TTLs too) and
// Persist, Flush and Resize, besides puts, deletes and sweeps. Under a
// capacity a key may be evicted (the model drops it); every other answer
// matches the model, and the accounting matches the entries after every
// operation and is 0 once the cache is empty.
func TestHunt18ModelIncrExpireFlushResize(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { hunt18Model(t, seed) })
	}
}

func hunt18Model(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 18))
	cfg := Config{Shards: 2}
	if seed%3 == 1 {
		cfg.MaxBytes = 30 * (EntryOverhead + 24)
	}
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	t.Cleanup(st.Close)
	c, err := st.Create(testScope, cfg)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string]hunt18Entry{}
	live := func(k string) (hunt18Entry, bool) {
		e, ok := model[k]
		if ok && e.expires != never && e.expires <= c.now() {
			return hunt18Entry{}, false
		}
		return e, ok
	}
	// reconcile drops from the model the keys a capacity evicted.
	reconcile := func() {
		if c.maxBytes.Load() == 0 {
			return
		}
		for k := range model {
			if _, ok := c.read(k, false); !ok {
				delete(model, k)
			}
		}
	}
	key := func() string { return "k" + strconv.Itoa(rng.IntN(50)) }
	values := []string{"0", "1", "-1", "41", "x", "", "007", "-0", "+1",
		strconv.FormatInt(math.MaxInt64, 10), strconv.FormatInt(math.MinInt64, 10),
		strconv.FormatInt(math.MaxInt64-1, 10), "9223372036854775808"}
	deltas := []int64{0, 1, -1, 2, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, -1000}
	ttls := []time.Duration{-time.Second, 0, 1, time.Millisecond, time.Second, math.MaxInt64, math.MaxInt64 - 1}
	var maxVer uint64
	for op := range 20_000 {
		switch r := rng.IntN(100); {
		case r < 25:
			k, v := key(), values[rng.IntN(len(values))]
			var opt PutOptions
			if rng.IntN(3) == 0 {
				opt.TTL = new(ttls[rng.IntN(len(ttls))])
			}
			ver, err := c.Put(k, []byte(v), opt)
			if err != nil || ver <= maxVer {
				t.Fatalf("op %d: Put %q = %d, %v (max version %d)", op, k, ver, err, maxVer)
			}
			maxVer = ver
			e := hunt18Entry{value: v, version: ver, expires: never}
			switch {
			case opt.TTL == nil:
			case *opt.TTL <= 0:
				delete(model, k)
				continue
			default:
				e.expires = deadline(c.now(), *opt.TTL)
			}
			model[k] = e
		case r < 50:
			k, d := key(), deltas[rng.IntN(len(deltas))]
			var ttl *time.Duration
			if rng.IntN(3) == 0 {
				ttl = new(ttls[rng.IntN(len(ttls))])
			}
			cur, exists := live(k)
			var base int64
			integer := true
			if exists {
				n, err := strconv.ParseInt(cur.value, 10, 64)
				integer = err == nil && strconv.FormatInt(n, 10) == cur.value
				base = n
			}
			got, ver, err := c.Incr(k, d, ttl)
			sum := base + d
			overflow := (d > 0 && sum < base) || (d < 0 && sum > base)
			switch {
			case !integer:
				if !errors.Is(err, ErrNotInteger) {
					t.Fatalf("op %d: Incr %q (%q) by %d = %d, %v; want ErrNotInteger", op, k, cur.value, d, got, err)
				}
				continue
			case overflow:
				var oe *OverflowError
				if !errors.As(err, &oe) || oe.Value != base || oe.Delta != d {
					t.Fatalf("op %d: Incr %q (%d) by %d = %d, %v; want an overflow", op, k, base, d, got, err)
				}
				continue
			case err != nil || got != sum || ver <= maxVer:
				t.Fatalf("op %d: Incr %q (%d, exists %v) by %d = %d v%d, %v; want %d above v%d", op, k, base, exists, d, got, ver, err, sum, maxVer)
			}
			maxVer = ver
			e := hunt18Entry{value: strconv.FormatInt(sum, 10), version: ver, expires: never}
			switch {
			case exists:
				e.expires = cur.expires // INCR keeps the TTL
			case ttl == nil:
			case *ttl <= 0:
				delete(model, k)
				continue
			default:
				e.expires = deadline(c.now(), *ttl)
			}
			model[k] = e
		case r < 60:
			k := key()
			cur, exists := live(k)
			var (
				ver   uint64
				found bool
				err   error
			)
			if rng.IntN(3) == 0 {
				ver, found, err = c.Persist(k)
				cur.expires = never
			} else {
				ttl := ttls[rng.IntN(len(ttls))]
				ver, found, err = c.Expire(k, ttl)
				if ttl <= 0 {
					if !errors.Is(err, ErrInvalidTTL) {
						t.Fatalf("op %d: Expire %q %v = %v", op, k, ttl, err)
					}
					continue
				}
				cur.expires = deadline(c.now(), ttl)
			}
			if err != nil || found != exists || (found && ver != cur.version) {
				t.Fatalf("op %d: expiry of %q = %d,%v,%v; model %+v %v", op, k, ver, found, err, cur, exists)
			}
			if exists {
				model[k] = cur
			}
		case r < 70:
			k := key()
			it, ok := c.GetWithMeta(k)
			e, wok := live(k)
			if ok != wok || (ok && (string(it.Value) != e.value || it.Version != e.version)) {
				t.Fatalf("op %d: Get %q = %q v%d %v; model %+v %v", op, k, it.Value, it.Version, ok, e, wok)
			}
			rem, has, tok := c.TTL(k)
			if tok != wok || has != (wok && e.expires != never) || (has && rem != timeLeft(e.expires, c.now())) {
				t.Fatalf("op %d: TTL %q = %v %v %v; model %+v %v at %d", op, k, rem, has, tok, e, wok, c.now())
			}
			if ok && e.expires != never && !it.ExpiresAt.Equal(c.expiresAt(e.expires)) {
				t.Fatalf("op %d: %q expires at %v, want %v", op, k, it.ExpiresAt, c.expiresAt(e.expires))
			}
		case r < 76:
			k := key()
			_, wok := live(k)
			if got := c.Delete(k); got != wok {
				t.Fatalf("op %d: Delete %q = %v, want %v", op, k, got, wok)
			}
			delete(model, k)
		case r < 77:
			n := 0
			for k := range model {
				if _, ok := live(k); ok {
					n++
				}
			}
			removed, err := c.Flush()
			if err != nil || removed != uint64(n) {
				t.Fatalf("op %d: Flush = %d, %v; model has %d live", op, removed, err, n)
			}
			clear(model)
		case r < 80:
			if cfg.MaxBytes > 0 {
				mb := cfg.MaxBytes / int64(1+rng.IntN(4))
				if _, err := st.Resize(testScope, mb); err != nil {
					t.Fatalf("op %d: Resize %d: %v", op, mb, err)
				}
			}
		case r < 92:
			d := time.Duration(rng.IntN(3)) * time.Millisecond
			if rng.IntN(8) == 0 {
				// A clock stepped back: what expired so far is removed
				// first (whether an expired entry not yet removed comes
				// back to life is left open).
				c.Sweep(1 << 30)
				c.Sweep(1 << 30)
				for k := range model {
					if _, ok := live(k); !ok {
						delete(model, k)
					}
				}
				d = -d
			}
			clk.Advance(d)
		default:
			c.Sweep(rng.IntN(200))
		}
		reconcile()
		checkInvariants(t, c)
	}
	for k := range model {
		c.Delete(k)
	}
	c.Sweep(1 << 30)
	c.Sweep(1 << 30)
	if st := c.Stats(); st.Bytes != 0 || st.Entries != 0 {
		t.Fatalf("emptied cache: %d bytes, %d entries", st.Bytes, st.Entries)
	}
}
