package cache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ttlState is a key's expiry as TTL reports it, to the millisecond the
// log keeps (-1: no expiry).
func ttlState(c *Cache, key string) (time.Duration, bool) {
	rem, has, ok := c.TTL(key)
	if !ok {
		return 0, false
	}
	if !has {
		return -1, true
	}
	return rem.Truncate(time.Millisecond), true
}

// sameTTLs checks that every key of want has the same expiry in c, within
// the millisecond the log rounds an expiry down to.
func sameTTLs(t *testing.T, what string, c *Cache, want map[string]time.Duration) {
	t.Helper()
	for k, w := range want {
		got, ok := ttlState(c, k)
		if !ok {
			t.Fatalf("%s: key %q missing, want TTL %v", what, k, w)
		}
		if (w < 0) != (got < 0) || got > w || w-got > time.Millisecond {
			t.Fatalf("%s: key %q TTL %v, want %v", what, k, got, w)
		}
	}
}

// A compaction of a durable cache's log (explicit, and again over its own
// output) keeps the expiry set by Expire and removed by Persist, the
// versions, and drops a key that expired: after a restart, the same
// keys with the same expiries.
func TestHunt10DurableCompactionKeepsExpiry(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4})
	c := e.open()
	want := map[string]time.Duration{}
	for i := range 40 {
		k := fmt.Sprintf("k%02d", i)
		opt := PutOptions{}
		if i%2 == 1 {
			opt.TTL = new(time.Minute)
		}
		mustPut(t, c, k, "v", opt)
		switch i % 4 {
		case 0: // no expiry, then one by Expire
			mustExpire(t, c, k, time.Duration(i+1)*time.Hour)
		case 1: // an expiry, removed by Persist
			if _, found, err := c.Persist(k); !found || err != nil {
				t.Fatalf("Persist %s: %v %v", k, found, err)
			}
		case 2: // no expiry, left so
		case 3: // an expiry made shorter: it expires before the restart
			mustExpire(t, c, k, time.Second)
		}
	}
	e.clk.Advance(2 * time.Second)
	for i := range 40 {
		k := fmt.Sprintf("k%02d", i)
		if r, ok := ttlState(c, k); ok {
			want[k] = r
		}
	}
	if len(want) != 30 {
		t.Fatalf("%d keys live before the compaction, want 30", len(want))
	}
	before := contents(c)
	for round := range 2 {
		if err := c.Compact(); err != nil {
			t.Fatalf("compaction %d: %v", round, err)
		}
		sameTTLs(t, "after a compaction", c, want)
	}
	c = e.open()
	sameContents(t, "after compactions and a restart", contents(c), before)
	sameTTLs(t, "after compactions and a restart", c, want)
	// Expiries changed after the compaction are in the log after it.
	mustExpire(t, c, "k02", 3*time.Minute)
	if _, found, err := c.Persist("k04"); !found || err != nil {
		t.Fatal(found, err)
	}
	want["k02"], want["k04"] = 3*time.Minute, -1
	c = e.open()
	sameTTLs(t, "after changes following a compaction", c, want)
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	c = e.open()
	sameTTLs(t, "after a second compaction and restart", c, want)
}

// Puts, deletes, expiries and persists of a few keys, racing from several
// goroutines with compactions of the log, leave in the log what memory
// holds: after a restart every key has the same value, version and
// expiry, and a key deleted last is not revived by an Expire that raced
// its delete.
func TestHunt10DurableExpireRacesStayConsistent(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 2})
	c := e.open()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 400 {
				k := keys[r.IntN(len(keys))]
				var err error
				switch r.IntN(5) {
				case 0:
					_, err = c.Put(k, []byte(fmt.Sprint(g, i)), PutOptions{})
				case 1:
					_, err = c.Remove(k)
				case 2:
					_, _, err = c.Expire(k, time.Duration(1+r.IntN(3600))*time.Second)
				case 3:
					_, _, err = c.Persist(k)
				case 4:
					if g == 0 && i%50 == 0 {
						if err = c.Compact(); err == ErrCompacting {
							err = nil
						}
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The last word on "a" is a delete; an Expire after it finds nothing.
	if _, err := c.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Expire("a", time.Hour); found || err != nil {
		t.Fatalf("Expire of a deleted key: found %v, %v", found, err)
	}
	want := contents(c)
	ttls := map[string]time.Duration{}
	for _, k := range keys {
		if r, ok := ttlState(c, k); ok {
			ttls[k] = r
		}
	}
	checkInvariants(t, c)
	c = e.open()
	sameContents(t, "after a restart", contents(c), want)
	sameTTLs(t, "after a restart", c, ttls)
	wantMiss(t, c, "a")
}

// A scan while writers put and delete keys around stable ones, a
// resize evicts and grows the cache, and the clock moves expiring keys
// out: no key twice, keys in order, never a key that had expired when
// its page was read, and every stable key that was never evicted.
func TestHunt10ScanUnderEvictionResizeAndExpiry(t *testing.T) {
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	defer st.Close()
	c, err := st.Create(testScope, Config{Shards: 8, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var stable []string
	for i := range 300 {
		k := fmt.Sprintf("s:%04d", i)
		mustPut(t, c, k, "v", PutOptions{})
		stable = append(stable, k)
	}
	// Keys that expire one a second, interleaved with the stable ones.
	deadline := map[string]time.Time{}
	for i := range 300 {
		k := fmt.Sprintf("s:%04d~ttl", i)
		ttl := time.Duration(i+1) * time.Second
		mustPut(t, c, k, "v", PutOptions{TTL: &ttl})
		deadline[k] = clk.Now().Add(ttl)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			big := make([]byte, 2048)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("s:%04d-churn%d", (i*17+g)%300, g)
				if i%4 == 3 {
					c.Delete(k)
				} else if _, err := c.Put(k, big, PutOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			size := int64(1 << 20)
			if i%2 == 1 {
				size = 256 << 10 // evicts
			}
			if _, err := st.Resize(testScope, size); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// The scan starts once the writers and the resizes are evicting.
	for wait := time.Now().Add(10 * time.Second); c.Stats().Evictions < 10; {
		if time.Now().After(wait) {
			t.Fatal("no eviction within 10 s")
		}
		runtime.Gosched()
	}
	var got []string
	cursor, pages := "", 0
	for {
		now := clk.Now()
		p, err := c.Scan(ScanOptions{Cursor: cursor, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range p.Keys {
			if d, ok := deadline[k]; ok && !d.After(now) {
				t.Fatalf("page %d holds %q, expired at %v before the page was read at %v", pages, k, d, now)
			}
		}
		got = append(got, p.Keys...)
		pages++
		clk.Advance(5 * time.Second)
		if cursor = p.Cursor; cursor == "" || pages > 10000 {
			break
		}
	}
	close(stop)
	wg.Wait()
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatal("keys not strictly increasing: one came twice or out of order")
	}
	returned := map[string]bool{}
	for _, k := range got {
		returned[k] = true
	}
	for _, k := range stable {
		// Never written again: present now means live throughout.
		if _, ok := c.Get(k); ok && !returned[k] {
			t.Fatalf("stable key %q live throughout the scan was not returned", k)
		}
	}
	n := 0
	for _, k := range got {
		if strings.HasSuffix(k, "~ttl") {
			n++
		}
	}
	if n == 300 { // some are evicted, the others expire as the clock moves
		t.Fatalf("all %d expiring keys returned: the clock did not expire any", n)
	}
	checkInvariants(t, c)
}
