package cache

import (
	"fmt"
	"testing"
	"time"
)

// tableSlots is the slot capacity the shards hold, live or free.
func tableSlots(c *Cache) (slots int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		slots += cap(s.slots)
		s.mu.RUnlock()
	}
	return slots
}

// A burst of tiny entries does not pin its tables once evictions have made
// room for large values: before, a shard kept its high-water slot table
// (and map) until it emptied completely, so a cache full of large values
// after a burst of tiny ones held nearly twice its capacity in memory
// (measured: heap 1.85 × MaxBytes for a 64 MiB cache), and eviction's
// samples scanned long runs of free slots (draining 160k tiny entries for
// large writes took 28 s instead of 6).
func TestHunt4TablesShrinkAfterBurst(t *testing.T) {
	const capacity = 8 << 20
	c, _ := newTestCache(t, Config{MaxBytes: capacity, Shards: 4})
	n := 0
	for ; c.Stats().Bytes+EntryOverhead+8 <= capacity; n++ {
		mustPut(t, c, fmt.Sprintf("t%07d", n), "", PutOptions{})
	}
	if high := tableSlots(c); high < n {
		t.Fatalf("%d slots for %d entries", high, n)
	}
	big := make([]byte, 1<<20)
	for i := range 16 {
		if _, err := c.Put(fmt.Sprint("big", i), big, PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	checkInvariants(t, c)
	st := c.Stats()
	slots := tableSlots(c)
	// A shard below shrinkSlots slots is not compacted; above, at least a
	// quarter of its slots are live.
	if limit := 4*shrinkSlots + 4*int(st.Entries); slots > limit {
		t.Fatalf("after %d tiny entries gave way to %d entries: %d slots held (limit %d)", n, st.Entries, slots, limit)
	}
	for i := range 8 { // the shrunk tables take new entries
		mustPut(t, c, fmt.Sprint("after", i), "v", PutOptions{})
	}
	checkInvariants(t, c)
}

// Compaction renumbers slots under the sweeper, between and within its
// chunks: every expired entry is still removed, no live one is, and the
// accounting stays exact.
func TestHunt4SweepAcrossCompactions(t *testing.T) {
	c, clk := newTestCache(t, Config{Shards: 1})
	const n = 20_000
	for i := range n {
		ttl := time.Second
		if i%10 == 0 {
			ttl = time.Hour
		}
		mustPut(t, c, fmt.Sprint("k", i), "v", PutOptions{TTL: &ttl})
	}
	clk.Advance(time.Minute)
	removed := 0
	for pass := 0; removed < n-n/10; pass++ {
		if pass > n {
			t.Fatalf("sweeps stalled at %d removed", removed)
		}
		removed += c.Sweep(777) // not a multiple of the chunk: compactions land mid-chunk
		checkInvariants(t, c)
	}
	if removed != n-n/10 {
		t.Fatalf("removed %d, want %d", removed, n-n/10)
	}
	for i := 0; i < n; i += 10 {
		wantGet(t, c, fmt.Sprint("k", i), "v")
	}
	if st := c.Stats(); st.Entries != n/10 || st.Expirations != uint64(n-n/10) {
		t.Fatalf("stats %+v", st)
	}
	if slots := tableSlots(c); slots > 4*(n/10) {
		t.Fatalf("%d slots held for %d entries", slots, n/10)
	}
}
