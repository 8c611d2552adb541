package cache

import (
	"testing"
	"time"
)

// A clock read more than 292 years after the cache's creation (an
// injected clock stepped forward; a Duration saturates there) must not
// make an entry without expiry look expired: the sweep, a read and a
// compaction's snapshot kept dropping it, since the saturated reading
// equals "never".
func TestHunt18ClockFarAheadKeepsEntriesWithoutExpiry(t *testing.T) {
	e := newDurableEnv(t, Config{})
	c := e.open()
	mustPut(t, c, "forever", "v", PutOptions{})
	mustPut(t, c, "ttl", "v", PutOptions{TTL: new(time.Hour)})
	e.clk.Set(e.clk.Now().AddDate(300, 0, 0))
	if n := c.Sweep(1 << 20); n != 1 {
		t.Errorf("sweep removed %d entries, want 1 (the one with a TTL)", n)
	}
	wantGet(t, c, "forever", "v")
	wantMiss(t, c, "ttl")
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	c = e.open()
	wantGet(t, c, "forever", "v")
}
