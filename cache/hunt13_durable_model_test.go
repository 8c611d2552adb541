package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// hunt13Entry is a live entry as the public API reads it.
type hunt13Entry struct {
	value   string
	version uint64
	ttl     time.Duration // remaining, to the millisecond; -1: none
}

// hunt13State is every live entry of c with its remaining TTL, read
// through the public API (Scan, GetWithMeta, TTL).
func hunt13State(t *testing.T, c *Cache) map[string]hunt13Entry {
	t.Helper()
	keys, _ := scanAll(t, c, ScanOptions{Limit: 7})
	if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Fatalf("scan is not sorted and unique: %q", keys)
	}
	out := map[string]hunt13Entry{}
	for _, k := range keys {
		it, ok := c.GetWithMeta(k)
		if !ok {
			t.Fatalf("scanned key %q misses", k)
		}
		ttl, _ := ttlState(c, k)
		out[k] = hunt13Entry{string(it.Value), it.Version, ttl}
	}
	if n := c.Stats().Entries; n != int64(len(out)) {
		// Only expired entries may be stored beyond the live ones.
		c.Sweep(1 << 30)
		c.Sweep(1 << 30)
		if n := c.Stats().Entries; n != int64(len(out)) {
			t.Fatalf("%d entries stored, %d live scanned", n, len(out))
		}
	}
	return out
}

// copyDir copies the regular files of src into dst (a process crash: the
// log's files as the OS has them, without Close).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A durable cache under a byte capacity, on a fake clock, through random
// puts (TTLs, compare-and-set with current, stale and absent versions),
// increments, Expire and Persist, deletes, flushes, compactions and clock
// steps, restarted (Close and reopen) and crashed (the log's files copied
// while it is open) at random: after each restart the cache holds exactly
// what it held before, with the same versions and remaining TTLs (the
// clock does not move across it), a later step of the clock expires what
// it should, versions only grow (every write above every version seen
// before, a stale IfVersion never matches), the byte counter equals the
// entries' sizes within the capacity, and Scan lists each live key once.
func TestHunt13DurableModelAcrossRestarts(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { hunt13DurableModel(t, seed) })
	}
}

func hunt13DurableModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 13))
	cfg := Config{Shards: 4}
	if seed%2 == 1 {
		cfg.MaxBytes = 40 * (EntryOverhead + 16)
	}
	e := newDurableEnv(t, cfg)
	e.opts.SegmentBytes = 1024
	c := e.open()
	var maxVer uint64
	seen := map[string]uint64{} // a version each key had, read before
	ttls := []time.Duration{0, -time.Millisecond, time.Millisecond, 5 * time.Millisecond, time.Second, time.Hour}
	key := func() string { return fmt.Sprint("k", rng.IntN(60)) }
	wrote := func(op string, k string, ver uint64) {
		t.Helper()
		if ver <= maxVer {
			t.Fatalf("%s %q took version %d, not above %d seen before", op, k, ver, maxVer)
		}
		maxVer = ver
		seen[k] = ver
	}
	restarts := 0
	for op := range 700 {
		switch r := rng.IntN(100); {
		case r < 35:
			k := key()
			var opt PutOptions
			if rng.IntN(2) == 0 {
				opt.TTL = new(ttls[rng.IntN(len(ttls))])
			}
			it, exists := c.GetWithMeta(k)
			switch rng.IntN(5) {
			case 0:
				opt.IfVersion = new(it.Version)
			case 1:
				if v, ok := seen[k]; ok && (!exists || v != it.Version) {
					opt.IfVersion = new(v) // stale: must fail
				}
			case 2:
				opt.IfAbsent = true
			}
			ver, err := c.Put(k, []byte(fmt.Sprint("v", op)), opt)
			stale := opt.IfVersion != nil && *opt.IfVersion != it.Version
			switch {
			case stale || (opt.IfAbsent && exists):
				if !errors.Is(err, ErrConditionFailed) {
					t.Fatalf("op %d: Put %q %+v over version %d,%v: %d, %v", op, k, opt, it.Version, exists, ver, err)
				}
			case err != nil:
				t.Fatalf("op %d: Put %q: %v", op, k, err)
			default:
				wrote("put", k, ver)
			}
		case r < 45:
			k := "n" + strconv.Itoa(rng.IntN(10))
			var ttl *time.Duration
			if rng.IntN(2) == 0 {
				ttl = new(ttls[rng.IntN(len(ttls))])
			}
			_, ver, err := c.Incr(k, int64(rng.IntN(5)-2), ttl)
			if err != nil {
				t.Fatalf("op %d: Incr %q: %v", op, k, err)
			}
			wrote("incr", k, ver)
		case r < 55:
			k := key()
			before, had := c.GetWithMeta(k)
			var (
				ver   uint64
				found bool
				err   error
			)
			if rng.IntN(3) == 0 {
				ver, found, err = c.Persist(k)
			} else {
				ver, found, err = c.Expire(k, ttls[2+rng.IntN(len(ttls)-2)])
			}
			if err != nil || found != had || (found && ver != before.Version) {
				t.Fatalf("op %d: expiry of %q = %d,%v,%v; before %d,%v", op, k, ver, found, err, before.Version, had)
			}
		case r < 65:
			c.Delete(key())
		case r < 67:
			if _, err := c.Flush(); err != nil {
				t.Fatalf("op %d: Flush: %v", op, err)
			}
		case r < 70:
			if err := c.Compact(); err != nil {
				t.Fatalf("op %d: Compact: %v", op, err)
			}
		case r < 85:
			e.clk.Advance(time.Duration(rng.IntN(4)) * time.Millisecond)
		case r < 90:
			_, _ = c.Scan(ScanOptions{Limit: 3})
			c.Sweep(rng.IntN(20))
		default:
			checkInvariants(t, c)
			want := hunt13State(t, c)
			down := time.Duration(rng.IntN(3)) * time.Millisecond
			if rng.IntN(2) == 0 {
				c = e.open()
			} else {
				// A crash: the files as they are, no Close.
				crash := filepath.Join(t.TempDir(), "crash")
				copyDir(t, e.dir, crash)
				e.st.Close()
				e.st = nil
				e.opts.Dir = crash
				e.dir = crash
				c = e.open()
			}
			restarts++
			if down > 0 {
				// The broker is down for a while: TTLs count it.
				c = nil
				e.clk.Advance(down)
				c = e.open()
				for k, w := range want {
					switch {
					case w.ttl < 0:
					case w.ttl <= down:
						delete(want, k)
					default:
						w.ttl -= down
						want[k] = w
					}
				}
			}
			got := hunt13State(t, c)
			if len(got) != len(want) {
				t.Fatalf("op %d: restart %d (down %v): %d live entries, want %d:\n got %v\nwant %v", op, restarts, down, len(got), len(want), got, want)
			}
			for k, w := range want {
				if got[k] != w {
					t.Fatalf("op %d: restart %d (down %v): %q = %+v, want %+v", op, restarts, down, k, got[k], w)
				}
			}
			if v := c.version.Load(); v < maxVer {
				t.Fatalf("op %d: restart %d: version counter %d below %d handed out", op, restarts, v, maxVer)
			}
			checkInvariants(t, c)
		}
	}
	if restarts == 0 {
		t.Fatal("no restart")
	}
}
