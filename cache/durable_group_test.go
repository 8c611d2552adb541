package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testwait"
)

// eventually waits for something that must happen, bounded against hangs.
var eventually = testwait.Eventually

// keysInShards returns n keys with prefix, each in a shard of its own and
// none in the shards of avoid.
func keysInShards(c *Cache, prefix string, n int, avoid ...string) []string {
	used := map[*shard]bool{}
	for _, k := range avoid {
		used[c.shardFor(k)] = true
	}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if s := c.shardFor(k); !used[s] {
			used[s] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// stallWrite sets e's OnWrite so that, once armed, it blocks the next
// write call of the log (after it wrote, holding the log's write lock, as
// a slow write does) until release; entered is closed when it blocks.
func stallWrite(e *durableEnv) (arm func(), entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	e.opts.OnWrite = func(records, bytes int) {
		if armed.CompareAndSwap(true, false) {
			close(in)
			<-out
		}
	}
	return func() { armed.Store(true) }, in, sync.OnceFunc(func() { close(out) })
}

// Writes of different shards that arrive while the log is writing share
// its next write call: with one write stalled, 8 puts of 8 other shards
// queue (each holding its shard's lock) and are then written by one
// write; each is applied, and the log replays to the same state. Without
// the group write each put has a write call of its own.
func TestDurableGroupWrite(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 16})
	e.opts.SegmentBytes = 1 << 20
	arm, entered, release := stallWrite(e)
	defer release()
	c := e.open()
	lg := c.dur.log
	before := lg.Stats()
	arm()

	first := make(chan error, 1)
	go func() {
		_, err := c.Put("first", []byte("v"), PutOptions{})
		first <- err
	}()
	testwait.Within(t, "the first write", entered)
	keys := keysInShards(c, "k", 8, "first")
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			if _, err := c.Put(k, []byte("value of "+k), PutOptions{}); err != nil {
				t.Errorf("put %s: %v", k, err)
			}
		})
	}
	eventually(t, "8 puts queued behind the stalled write", func() bool { return lg.Stats().Queued == len(keys) })
	release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	st := lg.Stats()
	if w, r := st.Writes-before.Writes, st.Records-before.Records; w != 2 || r != uint64(len(keys))+1 {
		t.Fatalf("%d records in %d write calls; want %d in 2", r, w, len(keys)+1)
	}
	for _, k := range keys {
		wantGet(t, c, k, "value of "+k)
	}
	want := contents(c)
	c = e.open()
	sameContents(t, "after a restart", contents(c), want)
}

// Many writers across shards — puts, overwrites, TTL ≤ 0 writes,
// compare-and-sets, deletes, evictions (a small MaxBytes), with segment
// rolls and compactions under way — end with a log that replays to
// exactly the cache's state, and they shared write calls.
func TestDurableConcurrentWritersReplay(t *testing.T) {
	size := entrySize("w0-k00", 64)
	e := newDurableEnv(t, Config{Shards: 16, MaxBytes: 50 * size})
	e.opts.CompactMinBytes = 32 << 10
	c := e.open()
	const writers, ops = 8, 400
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range ops {
				k := fmt.Sprintf("w%d-k%02d", w%4, rng.IntN(40)) // writers share keys
				val := []byte(fmt.Sprintf("%d/%d/%s", w, i, make([]byte, rng.IntN(64))))
				var err error
				switch r := rng.IntN(10); {
				case r < 6:
					_, err = c.Put(k, val, PutOptions{})
				case r == 6:
					zero := time.Duration(0)
					_, err = c.Put(k, val, PutOptions{TTL: &zero})
				case r == 7:
					if it, ok := c.GetWithMeta(k); ok {
						_, err = c.Put(k, val, PutOptions{IfVersion: &it.Version})
					}
				default:
					_, err = c.Remove(k)
				}
				if err != nil && !errors.Is(err, ErrConditionFailed) {
					t.Errorf("writer %d op %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, c)
	st := c.Stats()
	lst := c.dur.log.Stats()
	if st.LogWriteErrors != 0 || st.Evictions == 0 || lst.Segments < 2 && st.Compactions == 0 {
		t.Fatalf("the test meant evictions and rolls or compactions: %+v, log %+v", st, lst)
	}
	if lst.Writes > lst.Appends {
		t.Fatalf("log stats %+v: more writes than appends", lst)
	}
	t.Logf("%d appends in %d writes; %d evictions, %d compactions", lst.Appends, lst.Writes, st.Evictions, st.Compactions)
	want := contents(c)
	c = e.open()
	sameContents(t, "replayed", contents(c), want)
}
