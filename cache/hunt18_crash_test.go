package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A durable cache crashed with its log cut anywhere in its last records
// (a torn write: the tail the OS had not written back) loads the state
// after some prefix of its acknowledged writes, the one the cut leaves
// whole: never a deleted, expired or overwritten key's older value, never
// a value no write stored, and every write whose record lies wholly
// before the cut.
func TestHunt18TornTailLoadsAPrefix(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 2})
	e.opts.SegmentBytes = 1 << 20 // one segment: the cut is in it
	c := e.open()
	ops := []func(){
		func() { mustPut(t, c, "a", "1", PutOptions{}) },
		func() { mustPut(t, c, "b", "2", PutOptions{TTL: new(time.Hour)}) },
		func() { mustIncr(t, c, "n", 5, nil) },
		func() { mustPut(t, c, "a", "3", PutOptions{}) },
		func() { c.Delete("b") },
		func() { mustIncr(t, c, "n", -7, nil) },
		func() { mustExpire(t, c, "a", time.Minute) },
		func() { mustPut(t, c, "c", "x", PutOptions{TTL: new(time.Duration(0))}) },
		func() { c.Persist("a") },
		func() { mustPut(t, c, "b", "4", PutOptions{}) },
		func() { c.Delete("n") },
	}
	seg := func(dir string) string {
		m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		if len(m) != 1 {
			t.Fatalf("segments %q, want one", m)
		}
		return m[0]
	}
	type point struct {
		size  int64
		state map[string]hunt13Entry
	}
	points := []point{{logSize(e.dir), hunt13State(t, c)}}
	for _, op := range ops {
		op()
		points = append(points, point{logSize(e.dir), hunt13State(t, c)})
	}
	for i := 1; i < len(points); i++ {
		lo, hi := points[i-1].size, points[i].size
		for _, cut := range []int64{lo + 1, (lo + hi) / 2, hi - 1, hi} {
			if cut < lo || cut > hi {
				continue
			}
			want := points[i-1].state
			if cut == hi {
				want = points[i].state
			}
			crash := filepath.Join(t.TempDir(), "crash")
			copyDir(t, e.dir, crash)
			if err := os.Truncate(seg(crash), cut); err != nil {
				t.Fatal(err)
			}
			st := NewStore(StoreOptions{Clock: e.clk, SweepInterval: -1})
			opts := e.opts
			opts.Dir = crash
			rc, err := st.CreateDurable(testScope, e.cfg, opts)
			if err != nil {
				st.Close()
				t.Fatalf("op %d cut at %d of [%d,%d]: %v", i, cut, lo, hi, err)
			}
			got := hunt13State(t, rc)
			checkInvariants(t, rc)
			st.Close()
			if !sameEntries(got, want) {
				t.Fatalf("op %d cut at %d of [%d,%d]: loaded %v, want %v", i, cut, lo, hi, got, want)
			}
		}
	}
}

// sameEntries reports whether two states read by hunt13State are equal.
func sameEntries(a, b map[string]hunt13Entry) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if w, ok := b[k]; !ok || w != a[k] {
			return false
		}
	}
	return true
}

// Writers on disjoint keys (puts, deletes, increments, expiry changes)
// while compactions run back to back and the log rolls segments, then a
// crash (the files copied without Close) and a reopen: every key holds
// exactly its last acknowledged write, with its version and expiry, and
// every counter the exact sum of its increments.
func TestHunt18CompactDuringWritesThenCrash(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	e.opts.SegmentBytes = 1024
	c := e.open()
	const writers, ops = 4, 400
	type last struct {
		value   string
		version uint64
		ttl     time.Duration // -1: none
		gone    bool
	}
	results := make([]map[string]last, writers)
	stop := make(chan struct{})
	compacted := make(chan int)
	go func() {
		n := 0
		defer func() { compacted <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Compact(); err == nil {
				n++
			} else if !errors.Is(err, ErrCompacting) {
				t.Errorf("Compact: %v", err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 18))
			got := map[string]last{}
			results[w] = got
			for op := range ops {
				k := fmt.Sprintf("w%d-k%d", w, rng.IntN(8))
				cur := got[k]
				switch r := rng.IntN(10); {
				case r < 4:
					v := fmt.Sprint("v", op)
					ver, err := c.Put(k, []byte(v), PutOptions{})
					if err != nil {
						t.Errorf("Put: %v", err)
						return
					}
					got[k] = last{v, ver, -1, false}
				case r < 6:
					n, ver, err := c.Incr("n"+k, int64(rng.IntN(9)-4), nil)
					if err != nil {
						t.Errorf("Incr: %v", err)
						return
					}
					got["n"+k] = last{strconv.FormatInt(n, 10), ver, -1, false}
				case r < 8:
					if _, err := c.Remove(k); err != nil {
						t.Errorf("Remove: %v", err)
						return
					}
					got[k] = last{gone: true}
				default:
					if cur.gone || cur.version == 0 {
						continue
					}
					ttl := time.Duration(1+rng.IntN(100)) * time.Hour
					if _, found, err := c.Expire(k, ttl); err != nil || !found {
						t.Errorf("Expire %q: %v %v", k, found, err)
						return
					}
					cur.ttl = ttl
					got[k] = cur
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if n := <-compacted; n == 0 {
		t.Log("no compaction completed during the writes")
	}
	crash := filepath.Join(t.TempDir(), "crash")
	copyDir(t, e.dir, crash)
	e.opts.Dir, e.dir = crash, crash
	c = e.open()
	state := hunt13State(t, c)
	n := 0
	for _, got := range results {
		for k, l := range got {
			s, ok := state[k]
			switch {
			case l.gone:
				if ok {
					t.Errorf("%q deleted, loaded as %+v", k, s)
				}
				continue
			case !ok:
				t.Errorf("%q lost: want %+v", k, l)
				continue
			}
			n++
			if s.value != l.value || s.version != l.version || s.ttl != l.ttl {
				t.Errorf("%q loaded as %+v, want %+v", k, s, l)
			}
		}
	}
	if len(state) != n {
		t.Errorf("%d keys loaded, %d written", len(state), n)
	}
}
