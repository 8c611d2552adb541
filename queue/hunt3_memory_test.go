package queue

import (
	"testing"
)

// A burst of deliveries leaves no more than a bounded number of recycled
// entries behind once it is acked: the memory of a large in-flight or
// pending set goes back to the runtime. (Before, every entry of the
// largest burst ever stayed on the free list for the group's life,
// about 150 bytes per record, and so did the ack-deadline queue's array:
// a prefetch of a million records kept some 170 MB after everything was
// acked.)
func TestBurstEntriesNotHoarded(t *testing.T) {
	const n = 20000
	g := newGroupT(t, memStream(t, n), Options{Clock: newFakeClock(), ReadBatch: n})
	m := joinT(t, g, "m", n)
	ds := nextT(t, m, 0)
	if len(ds) != n {
		t.Fatalf("%d deliveries, want %d", len(ds), n)
	}
	ackT(t, m, offsets(ds)...)
	g.mu.Lock()
	free := len(g.free)
	g.mu.Unlock()
	if free > maxFreeEntries {
		t.Fatalf("%d recycled entries kept after a burst of %d, want at most %d", free, n, maxFreeEntries)
	}
	g.Tick(g.opts.Clock.Now()) // drops the stale ack deadlines
	g.mu.Lock()
	deadlines := cap(g.timeouts.items)
	g.mu.Unlock()
	if deadlines > maxIdleFifo {
		t.Fatalf("ack-deadline queue keeps room for %d after a burst of %d", deadlines, n)
	}
	if s := g.Stats(); s.Acked != n || s.Lag != 0 {
		t.Fatalf("stats %+v", s)
	}
}
