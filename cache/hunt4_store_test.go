package cache

import (
	"errors"
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

// Replace swaps a cache for a new one with another configuration in one
// step: a Get racing it finds the old cache or the new one, never none,
// and the old one is deleted (its writes fail, its versions stay below the
// new one's).
func TestReplaceNeverLeavesTheScopeEmpty(t *testing.T) {
	st := NewStore(StoreOptions{SweepInterval: -1})
	defer st.Close()
	scope := Scope{"t", "ns", "c"}
	old, err := st.Create(scope, Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	v, err := old.Put("k", []byte("v"), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	missing := make(chan Scope, 1)
	go func() {
		for {
			select {
			case <-stop:
				close(missing)
				return
			default:
			}
			if _, err := st.Get(scope); err != nil {
				missing <- scope
				close(missing)
				return
			}
		}
	}()
	var c *Cache
	for i := range 200 {
		if c, err = st.Replace(scope, Config{MaxBytes: int64(2+i%2) << 20}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if _, ok := <-missing; ok {
		t.Fatal("a Get found no cache while Replace swapped it")
	}
	if got, _ := st.Get(scope); got != c || c.Config().MaxBytes != 3<<20 {
		t.Fatalf("after the replaces Get = %p (config %+v), want the last one %p", got, got.Config(), c)
	}
	if _, err := old.Put("k", []byte("w"), PutOptions{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("write to the replaced cache: %v, want ErrDeleted", err)
	}
	nv, err := c.Put("k", []byte("x"), PutOptions{})
	if err != nil || nv <= v {
		t.Fatalf("put on the new cache: version %d (%v), want above the old cache's %d", nv, err, v)
	}
}
