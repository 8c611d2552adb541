package cache

import (
	"fmt"
	"sync"
	"testing"
)

// The Store never hands out a deleted cache: while Delete dropped a large
// cache's entries, the scope still named it, so Get (every request
// resolves its cache with it) and Create returned a cache whose writes
// all failed with ErrDeleted, although the scope was about to be free or
// already created again.
func TestHunt4StoreNeverHandsOutDeletedCaches(t *testing.T) {
	st := NewStore(StoreOptions{Clock: newFakeClock(), SweepInterval: -1})
	t.Cleanup(st.Close)
	fill := func(c *Cache) {
		for i := range 20_000 {
			if _, err := c.Put(fmt.Sprint(i), nil, PutOptions{}); err != nil {
				return // deleted meanwhile
			}
		}
	}
	c, err := st.Create(testScope, Config{})
	if err != nil {
		t.Fatal(err)
	}
	fill(c)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(stop)
		for range 10 {
			if err := st.Delete(testScope); err != nil {
				t.Error(err)
				return
			}
			c, err := st.Create(testScope, Config{})
			if err != nil {
				t.Error(err)
				return
			}
			fill(c)
		}
	})
	seen := 0
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		if c, err := st.Get(testScope); err == nil && c.deleted.Load() {
			// Deleted after Get returned it? Then the map no longer holds it.
			st.mu.RLock()
			still := st.caches[testScope] == c
			st.mu.RUnlock()
			if still {
				wg.Wait()
				t.Fatal("Get returned a deleted cache that the Store still holds")
			}
		} else if err == nil {
			seen++
		}
	}
	wg.Wait()
	t.Logf("%d live lookups", seen)
}
