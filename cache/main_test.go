package cache

import (
	"github.com/felixmq/felix/internal/testclock"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Clock that moves only when told to.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock { return testclock.New() }

// testScope is the reference's demo scope.
var testScope = Scope{Tenant: "t1", Namespace: "default", Cache: "primary"}

// newTestCache returns a cache on a fake clock, in a Store without a
// background sweep that is closed when the test ends.
func newTestCache(t testing.TB, cfg Config) (*Cache, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	st := NewStore(StoreOptions{Clock: clk, SweepInterval: -1})
	t.Cleanup(st.Close)
	c, err := st.Create(testScope, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return c, clk
}

// checkInvariants verifies, with every shard locked, that the accounting
// matches the entries: the byte counter is the sum of entry sizes, every
// index entry names a live slot holding its key, the free list names the
// free slots, and each key is in its hash's shard.
func checkInvariants(t *testing.T, c *Cache) {
	t.Helper()
	for i := range c.shards {
		c.shards[i].mu.Lock()
		defer c.shards[i].mu.Unlock()
	}
	var bytes int64
	var entries int
	for si := range c.shards {
		s := &c.shards[si]
		live := 0
		for i := range s.slots {
			sl := &s.slots[i]
			if sl.version == 0 {
				continue
			}
			live++
			bytes += sl.size()
			if j, ok := s.index[sl.key]; !ok || j != uint32(i) {
				t.Fatalf("shard %d slot %d key %q: index has %d,%v", si, i, sl.key, j, ok)
			}
			if c.shardFor(sl.key) != s {
				t.Fatalf("key %q in shard %d, hashes elsewhere", sl.key, si)
			}
		}
		if live != len(s.index) || int64(live) != s.entries.Load() {
			t.Fatalf("shard %d: %d live slots, %d index entries, entries counter %d", si, live, len(s.index), s.entries.Load())
		}
		if live+len(s.free) != len(s.slots) {
			t.Fatalf("shard %d: %d live + %d free != %d slots", si, live, len(s.free), len(s.slots))
		}
		entries += live
	}
	if got := c.bytes.Load(); got != bytes {
		t.Fatalf("byte counter %d, entries account %d", got, bytes)
	}
	if max := c.maxBytes.Load(); max > 0 && bytes > max {
		t.Fatalf("%d bytes stored over capacity %d", bytes, max)
	}
}

func mustPut(t testing.TB, c *Cache, key, value string, opt PutOptions) uint64 {
	t.Helper()
	v, err := c.Put(key, []byte(value), opt)
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return v
}

func wantGet(t testing.TB, c *Cache, key, want string) {
	t.Helper()
	got, ok := c.Get(key)
	if !ok || string(got) != want {
		t.Fatalf("Get %q = %q,%v; want %q", key, got, ok, want)
	}
}

func wantMiss(t testing.TB, c *Cache, key string) {
	t.Helper()
	if got, ok := c.Get(key); ok {
		t.Fatalf("Get %q = %q; want a miss", key, got)
	}
}
