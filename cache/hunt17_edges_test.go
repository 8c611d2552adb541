package cache

import (
	"testing"
	"time"
)

// A clock stepped back before the cache's creation (an injected clock, or
// a wall-clock Clock) makes the cache's now negative: a TTL set then must
// still expire ttl later, not saturate to "never" through an overflow of
// never-now.
func TestHunt17TTLAfterClockSteppedBackExpires(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	created := clk.Now()
	clk.Set(created.Add(-time.Minute))
	mustPut(t, c, "k", "v", PutOptions{TTL: new(time.Second)})
	rem, has, ok := c.TTL("k")
	if !ok || !has || rem != time.Second {
		t.Fatalf("TTL = %v %v %v; want 1s true true", rem, has, ok)
	}
	mustPut(t, c, "e", "v", PutOptions{})
	if _, found, err := c.Expire("e", time.Second); err != nil || !found {
		t.Fatalf("Expire = %v %v", found, err)
	}
	if _, _, err := c.Incr("n", 1, new(time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Set(created.Add(time.Hour))
	for _, k := range []string{"k", "e", "n"} {
		wantMiss(t, c, k)
	}
}

// TTL of a key with a huge expiry (saturated just below never) read at a
// clock stepped back before the cache's epoch does not overflow into a
// negative remaining time.
func TestHunt17TTLRemainingNeverNegative(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	created := clk.Now()
	mustPut(t, c, "k", "v", PutOptions{TTL: new(time.Duration(1<<63 - 1))})
	clk.Set(created.Add(-time.Hour))
	rem, has, ok := c.TTL("k")
	if !ok || !has || rem <= 0 {
		t.Fatalf("TTL = %v %v %v; want a positive remaining time", rem, has, ok)
	}
}
