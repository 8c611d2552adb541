package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Flushes of a durable cache racing every kind of write (puts with and
// without TTL, compare-and-sets, deletes, increments, expire and persist,
// evictions under MaxBytes) and compactions, background and explicit:
// afterwards the accounting matches the entries, and a restart loads
// exactly what memory holds, versions included. A compare-and-set with a
// version read before a flush never succeeds after it.
func TestHunt12FlushRacesEveryWrite(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 4, MaxBytes: 16 << 10})
	e.opts.SegmentBytes = 2048
	e.opts.CompactMinBytes = 16 << 10 // background compactions too
	c := e.open()
	const workers, keys = 4, 200
	var (
		stop atomic.Bool
		ops  atomic.Int64
		wg   sync.WaitGroup
		// lastFlushVer: every version at or below it was handed out
		// before a flush completed.
		lastFlushVer atomic.Uint64
	)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 12))
			for i := 0; i < 200000 && !stop.Load(); i++ {
				key := fmt.Sprintf("k%03d", r.IntN(keys))
				var err error
				switch r.IntN(8) {
				case 0:
					_, err = c.Put(key, fmt.Appendf(nil, "v%d-%d", w, i), PutOptions{})
				case 1:
					_, err = c.Put(key, make([]byte, r.IntN(900)), PutOptions{TTL: new(time.Hour)})
				case 2:
					_, err = c.Remove(key)
				case 3:
					_, _, err = c.Incr("n"+key[1:], 1, nil)
					if errors.Is(err, ErrNotInteger) {
						err = nil
					}
				case 4:
					_, _, err = c.Expire(key, time.Hour)
				case 5:
					_, _, err = c.Persist(key)
				case 6:
					// A version from before the last flush: never matches.
					if old := lastFlushVer.Load(); old > 0 {
						if _, perr := c.Put(key, []byte("cas"), PutOptions{IfVersion: &old}); !errors.Is(perr, ErrConditionFailed) {
							t.Errorf("CAS at version %d from before a flush: %v", old, perr)
							return
						}
					}
				case 7:
					if it, ok := c.GetWithMeta(key); ok {
						v := it.Version
						_, err = c.Put(key, []byte("cas-ok"), PutOptions{IfVersion: &v})
						if errors.Is(err, ErrConditionFailed) {
							err = nil
						}
					}
				}
				if err != nil {
					t.Errorf("worker %d op %d: %v", w, i, err)
					return
				}
				ops.Add(1)
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 100000 && !stop.Load(); i++ {
			if err := c.Compact(); err != nil && !errors.Is(err, ErrCompacting) {
				t.Errorf("Compact: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	for range 15 {
		at := ops.Load()
		eventually(t, "writes between flushes", func() bool { return ops.Load() >= at+200 || t.Failed() })
		if t.Failed() {
			break
		}
		// Taken before the flush, so every entry at or below it goes.
		before := c.version.Load()
		if _, err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		lastFlushVer.Store(before)
	}
	at := ops.Load()
	eventually(t, "writes after the last flush", func() bool { return ops.Load() >= at+200 || t.Failed() })
	stop.Store(true)
	wg.Wait()
	checkInvariants(t, c)
	for k := range contents(c) {
		if it, _ := c.GetWithMeta(k); it.Version <= lastFlushVer.Load() {
			t.Fatalf("%q at version %d survived the flush at %d", k, it.Version, lastFlushVer.Load())
		}
	}
	want := contents(c)
	st := c.Stats()
	t.Logf("%d ops, %d entries kept, %d flushed, %d compactions, %d evictions", ops.Load(), len(want), st.Flushed, st.Compactions, st.Evictions)
	c = e.open()
	sameContents(t, "after the flushes and a restart", contents(c), want)
}
