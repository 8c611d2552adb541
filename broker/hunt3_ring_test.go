package broker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// refRing models the replay ring as it behaved when its whole slot array
// was allocated up front: push appends, then drops the oldest while more
// than capacity are held, then while the bytes exceed maxBytes and more
// than one is held; capacity 0 keeps nothing. It is the oracle for ring.
type refRing struct {
	capacity, maxBytes int
	offs               []uint64
	payloads           [][]byte
	n, bytes           int
}

func (r *refRing) init(capacity, maxBytes int) {
	r.capacity, r.maxBytes = max(capacity, 0), maxBytes
}

func (r *refRing) oldest(tail uint64) uint64 {
	if len(r.offs) == 0 {
		return tail
	}
	return r.offs[0]
}

func (r *refRing) push(off uint64, p []byte) {
	if r.capacity == 0 {
		return
	}
	r.offs, r.payloads = append(r.offs, off), append(r.payloads, p)
	r.bytes += len(p)
	for len(r.offs) > r.capacity || (r.bytes > r.maxBytes && len(r.offs) > 1) {
		r.bytes -= len(r.payloads[0])
		r.offs, r.payloads = r.offs[1:], r.payloads[1:]
	}
	r.n = len(r.offs)
}

func (r *refRing) since(from uint64) [][]byte {
	for i, off := range r.offs {
		if off >= from {
			return r.payloads[i:]
		}
	}
	return nil
}

// ringPayload returns a payload of size n with a backing array of its own
// (even when empty), so an entry is identified by its array.
func ringPayload(n int) []byte { return make([]byte, n, n+1) }

// ringHarness pushes the same batches into a ring and the reference and
// checks after every batch that they agree on oldest, count, bytes and
// the payloads read() from every offset from oldest to past the tail.
type ringHarness struct {
	t        *testing.T
	capacity int
	got      ring
	want     refRing
	tail     uint64
	peak     int // largest count the reference ever retained
}

func newRingHarness(t *testing.T, capacity, maxBytes int) *ringHarness {
	h := &ringHarness{t: t, capacity: capacity}
	h.got.init(capacity, maxBytes)
	h.want.init(capacity, maxBytes)
	return h
}

func (h *ringHarness) push(sizes ...int) {
	h.t.Helper()
	batch := make([][]byte, len(sizes))
	for i, n := range sizes {
		batch[i] = ringPayload(n)
	}
	h.got.pushAll(h.tail, int64(h.tail), batch)
	for i, p := range batch { // one at a time, for the peak
		h.want.push(h.tail+uint64(i), p)
		h.peak = max(h.peak, h.want.n)
	}
	h.tail += uint64(len(batch))
	h.check()
}

func (h *ringHarness) check() {
	h.t.Helper()
	g, w := &h.got, &h.want
	if go_, wo := g.oldest(h.tail), w.oldest(h.tail); go_ != wo {
		h.t.Fatalf("tail %d: oldest %d, want %d", h.tail, go_, wo)
	}
	if g.n != w.n || g.bytes != w.bytes {
		h.t.Fatalf("tail %d: %d events / %d bytes, want %d / %d", h.tail, g.n, g.bytes, w.n, w.bytes)
	}
	if len(g.buf) > h.capacity {
		h.t.Fatalf("slot array %d > capacity %d", len(g.buf), h.capacity)
	}
	if h.peak == 0 && g.buf != nil {
		h.t.Fatalf("slot array of %d allocated while nothing was retained", len(g.buf))
	}
	if len(g.buf) > max(ringMinSlots, 2*h.peak) {
		h.t.Fatalf("slot array %d for at most %d retained events", len(g.buf), h.peak)
	}
	for from := w.oldest(h.tail); from <= h.tail+1; from++ {
		gs, at := g.read(nil, from, h.tail, math.MaxInt, math.MaxInt)
		ws := w.since(from)
		if len(gs) > 0 && at != from {
			h.t.Fatalf("tail %d: read(%d) starts at %d", h.tail, from, at)
		}
		if len(gs) != len(ws) {
			h.t.Fatalf("tail %d: since(%d) has %d events, want %d", h.tail, from, len(gs), len(ws))
		}
		for i := range ws {
			if len(gs[i]) != len(ws[i]) || unsafe.SliceData(gs[i]) != unsafe.SliceData(ws[i]) {
				h.t.Fatalf("tail %d: since(%d)[%d] is not the pushed payload", h.tail, from, i)
			}
		}
	}
}

func TestRingMatchesReference(t *testing.T) {
	cases := []struct {
		name               string
		capacity, maxBytes int
		batches            [][]int // payload sizes per batch
	}{
		{"disabled", 0, 1 << 20, [][]int{{1, 2}, {3}}},
		{"capacity 1", 1, 1 << 20, [][]int{{1}, {2, 3}, {4, 5, 6}}},
		{"count bound wraps", 5, 1 << 20, [][]int{{1, 1, 1}, {1, 1, 1}, {1}, {1, 1, 1, 1, 1, 1, 1}, {1, 1}}},
		{"grows past min then wraps", 20, 1 << 20, [][]int{{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}},
		{"byte bound", 100, 10, [][]int{{4, 4}, {4}, {1, 1, 1, 1, 1, 1, 1, 1}, {9}, {2}}},
		{"payload over byte bound kept alone", 10, 8, [][]int{{3}, {20}, {1}, {30, 2}}},
		{"empty payloads", 4, 0, [][]int{{0, 0, 0}, {0, 0, 0}, {1}, {0}}},
		{"byte bound then count bound", 12, 16, [][]int{{8, 8, 8}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {16}, {1, 1}}},
		{"growth while wrapped", 64, 1 << 20, [][]int{
			{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
			{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newRingHarness(t, c.capacity, c.maxBytes)
			h.check()
			for _, b := range c.batches {
				h.push(b...)
			}
		})
	}
}

// TestRingMatchesReferenceRandom drives random batches, with sizes that
// make the byte bound and the count bound bite in turn, through many
// capacities (below, at and above the first slot array size, and not
// powers of two), so growth happens with the array wrapped at every head.
func TestRingMatchesReferenceRandom(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		capacity := 1 + rng.IntN(70)
		maxBytes := rng.IntN(200)
		if seed%4 == 0 {
			maxBytes = 1 << 20 // count bound only
		}
		t.Run(fmt.Sprintf("seed %d cap %d bytes %d", seed, capacity, maxBytes), func(t *testing.T) {
			h := newRingHarness(t, capacity, maxBytes)
			for range 150 {
				sizes := make([]int, rng.IntN(capacity/2+3))
				for i := range sizes {
					switch rng.IntN(10) {
					case 0:
						sizes[i] = 0
					case 1:
						sizes[i] = maxBytes + rng.IntN(5) // alone over the bound
					default:
						sizes[i] = 1 + rng.IntN(8)
					}
				}
				h.push(sizes...)
			}
		})
	}
}

// TestRingGrowsOnDemand checks that a new in-memory stream's ring holds no
// slot array until the first publish, that the array then starts small,
// and that it stops at capacity without allocating on further pushes.
func TestRingGrowsOnDemand(t *testing.T) {
	br := New(Options{AutoCreateStreams: true})
	declared, err := br.DeclareStream("t", "ns", "declared")
	if err != nil {
		t.Fatal(err)
	}
	auto, err := br.Stream("t", "ns", "auto")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Stream{declared, auto} {
		if s.ring.buf != nil {
			t.Fatalf("%s: unused ring holds %d slots", s.Key(), len(s.ring.buf))
		}
		if s.ring.capacity != 1024 {
			t.Fatalf("%s: ring capacity %d, want the default 1024", s.Key(), s.ring.capacity)
		}
	}
	if _, err := declared.Publish(t.Context(), [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got := len(declared.ring.buf); got != ringMinSlots {
		t.Fatalf("after one event the ring holds %d slots, want %d", got, ringMinSlots)
	}

	var r ring
	r.init(1000, 1<<20)
	p := []byte("p")
	for i := range 5000 {
		r.push(uint64(i), int64(i), p)
	}
	if len(r.buf) != 1000 || r.n != 1000 {
		t.Fatalf("full ring: %d slots, %d events; want 1000, 1000", len(r.buf), r.n)
	}
	off := uint64(5000)
	if a := testing.AllocsPerRun(100, func() { r.push(off, 0, p); off++ }); a != 0 {
		t.Fatalf("push into a full ring allocates %v times", a)
	}
}
