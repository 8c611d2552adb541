package controlplane

import (
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testclock"
)

// A durability flip applies to a cache whose entries have all expired
// (none is live, none is ever returned again) as to an empty one, in both
// directions, without waiting for the sweep to have removed them; a live
// entry still refuses it.
func TestHunt13CacheFlipIgnoresExpiredEntries(t *testing.T) {
	r := openCacheRig(t, t.TempDir())
	clk := testclock.New()
	r.caches.Close()
	r.caches = cache.NewStore(cache.StoreOptions{SweepInterval: -1, Clock: clk})
	r.applier.opts.Caches = r.caches
	k := CacheKey{"t", "n", "c"}
	for _, durable := range []bool{true, false} {
		c := r.get(k)
		if c == nil {
			c = r.ensure(Cache{TenantID: "t", Namespace: "n", Cache: "c", Durable: !durable})
		}
		if _, err := c.Put("session", []byte("x"), cache.PutOptions{TTL: new(time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := r.applier.EnsureCache(Cache{TenantID: "t", Namespace: "n", Cache: "c", Durable: durable}); err == nil {
			t.Fatalf("flip to durable=%v applied over a live entry", durable)
		}
		clk.Advance(2 * time.Second)
		if got := r.ensure(Cache{TenantID: "t", Namespace: "n", Cache: "c", Durable: durable}); got == nil || got.Durable() != durable {
			t.Fatalf("flip to durable=%v of a cache holding only an expired entry: not applied", durable)
		}
	}
}
