package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// hunt18Typed reports whether err is one of the errors the cache's API
// documents (nil included): a concurrent Close, Flush, Resize or
// Compact must not surface anything else.
func hunt18Typed(err error) bool {
	for _, want := range []error{ErrStorage, ErrClosed, ErrDeleted, ErrCompacting, ErrNotInteger,
		ErrOverflow, ErrConditionFailed, ErrTooLarge, ErrInvalidTTL} {
		if errors.Is(err, want) {
			return true
		}
	}
	return err == nil
}

// Goroutines hammer a durable cache and an in-memory one sharing a small
// budget with every operation (puts, increments, expiry changes,
// deletes, scans, sweeps, flushes, resizes, compactions, clock steps)
// while the Store closes under them. Nothing panics or deadlocks, every
// error is a documented one, the accounting matches the entries, and the
// durable cache's memory once its writers stopped is exactly what its log
// loads: no write acknowledged lost, nothing removed brought back.
func TestHunt18ChaosThenClose(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { hunt18Chaos(t, seed) })
	}
}

func hunt18Chaos(t *testing.T, seed uint64) {
	e := newDurableEnv(t, Config{Shards: 4, MaxBytes: 40 * (EntryOverhead + 20)})
	e.opts.SegmentBytes = 2048
	e.opts.CompactMinBytes = 4096
	st := NewStore(StoreOptions{Clock: e.clk, SweepInterval: -1, MaxTotalBytes: 70 * (EntryOverhead + 20)})
	e.st = st
	d, err := st.CreateDurable(testScope, e.cfg, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	m := mustCreate(t, st, "m", Config{Shards: 2})
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		badErrs []error
	)
	check := func(op string, err error) {
		if !hunt18Typed(err) {
			errMu.Lock()
			badErrs = append(badErrs, fmt.Errorf("%s: %w", op, err))
			errMu.Unlock()
		}
	}
	const workers, ops = 6, 1500
	closeAt := make(chan struct{})
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for op := range ops {
				if g == 0 && op == ops/2 {
					close(closeAt)
				}
				c := d
				if rng.IntN(3) == 0 {
					c = m
				}
				k := fmt.Sprint("k", rng.IntN(60))
				switch r := rng.IntN(100); {
				case r < 30:
					var opt PutOptions
					if rng.IntN(3) == 0 {
						opt.TTL = new(time.Duration(rng.IntN(4)-1) * time.Millisecond)
					}
					_, err := c.Put(k, make([]byte, rng.IntN(20)), opt)
					check("put", err)
				case r < 45:
					_, _, err := c.Incr("n"+k, int64(rng.IntN(7)-3), nil)
					check("incr", err)
				case r < 55:
					_, _, err := c.Expire(k, time.Duration(1+rng.IntN(3))*time.Millisecond)
					check("expire", err)
				case r < 60:
					_, _, err := c.Persist(k)
					check("persist", err)
				case r < 70:
					_, err := c.Remove(k)
					check("remove", err)
				case r < 78:
					c.Get(k)
					c.TTL(k)
				case r < 82:
					_, err := c.Scan(ScanOptions{Limit: 5, Cursor: k})
					check("scan", err)
				case r < 85:
					_, err := c.Flush()
					check("flush", err)
				case r < 88:
					_, err := st.Resize(c.Scope(), int64(20+rng.IntN(40))*(EntryOverhead+20))
					check("resize", err)
				case r < 91:
					check("compact", c.Compact())
				case r < 94:
					st.Sweep(50)
				default:
					e.clk.Advance(time.Millisecond)
				}
			}
		})
	}
	<-closeAt
	st.Close()
	wg.Wait()
	for _, err := range badErrs {
		t.Errorf("undocumented error: %v", err)
	}
	for _, c := range []*Cache{d, m} {
		checkInvariants(t, c)
	}
	storeBytes(t, st)
	want := contents(d)
	e.st = nil
	got := contents(e.open())
	sameContents(t, "reloaded after close", got, want)
}
