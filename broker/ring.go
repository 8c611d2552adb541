package broker

import "sort"

// ring is the bounded in-memory replay buffer of a stream: the newest
// events, bounded by count and payload bytes, each with the time it was
// published (unix microseconds, 8 bytes a slot) for starts by time.
// Entries alias the immutable shared frames, so retaining an event costs
// no copy. Not safe for concurrent use: the stream changes it holding
// both its lock and ringMu, so either lock is enough to read it.
//
// The slot array is allocated on demand: a stream that is never published
// to holds none, and the array doubles (from ringMinSlots) only when it is
// full and below capacity, so push stays O(1) amortised and a stream that
// keeps few events (small capacity use or a byte bound) never pays for the
// whole capacity. Eviction is by capacity and bytes exactly as if the
// array had been allocated whole.
type ring struct {
	buf      [][]byte // circular, len ≤ capacity; entry i holds offset start+i
	ts       []int64  // publish time of buf's entries (same slots), unix microseconds
	head     int      // index of the oldest entry
	n        int
	start    uint64 // offset of the oldest entry
	bytes    int
	capacity int // bound in events; 0 disables the ring
	maxBytes int
}

// ringMinSlots is the slot array's first size.
const ringMinSlots = 8

func (r *ring) init(capacity, maxBytes int) {
	r.capacity = max(capacity, 0)
	r.maxBytes = maxBytes
}

// oldest returns the oldest retained offset (tail when empty).
func (r *ring) oldest(tail uint64) uint64 {
	if r.n == 0 {
		return tail
	}
	return r.start
}

// pushAll records payloads (sub-slices of immutable shared frames) with
// offsets from off, published at ts (unix microseconds).
func (r *ring) pushAll(off uint64, ts int64, payloads [][]byte) {
	if r.capacity == 0 {
		return
	}
	for i, p := range payloads {
		r.push(off+uint64(i), ts, p)
	}
}

// push appends p at offset off (the tail). The oldest entries go until p
// fits both bounds; p itself is kept even if it alone exceeds maxBytes.
// Evicting for bytes before taking a slot (rather than after) gives the
// same entries, since both bounds evict from the oldest end, and keeps the
// slot array from growing for an entry the byte bound would at once drop.
func (r *ring) push(off uint64, ts int64, p []byte) {
	for r.n > 0 && r.bytes+len(p) > r.maxBytes {
		r.evict()
	}
	if r.n == len(r.buf) {
		if len(r.buf) < r.capacity {
			r.grow()
		} else {
			r.evict()
		}
	}
	if r.n == 0 {
		r.start = off
	}
	slot := (r.head + r.n) % len(r.buf)
	r.buf[slot], r.ts[slot] = p, ts
	r.n++
	r.bytes += len(p)
}

// grow doubles the full slot array (up to capacity), oldest entry first.
func (r *ring) grow() {
	buf := make([][]byte, min(max(2*len(r.buf), ringMinSlots), r.capacity))
	ts := make([]int64, len(buf))
	k := copy(buf, r.buf[r.head:])
	copy(buf[k:], r.buf[:r.head])
	copy(ts, r.ts[r.head:])
	copy(ts[k:], r.ts[:r.head])
	r.buf, r.ts = buf, ts
	r.head = 0
}

func (r *ring) evict() {
	r.bytes -= len(r.buf[r.head])
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.start++
}

// read appends to dst the retained payloads from offset from (or from the
// oldest retained one, when eviction or a purge has passed from) up to
// end: at most maxEvents, and no more than maxBytes in all unless the
// first alone is larger. It returns them with the offset of the first;
// with nothing retained below end, dst unchanged and end.
func (r *ring) read(dst [][]byte, from, end uint64, maxEvents, maxBytes int) ([][]byte, uint64) {
	from = max(from, r.start)
	stop := min(end, r.start+uint64(r.n))
	if r.n == 0 || from >= stop {
		return dst, end
	}
	for off, size, k := from, 0, 0; off < stop && k < maxEvents; off, k = off+1, k+1 {
		p := r.buf[(r.head+int(off-r.start))%len(r.buf)]
		if k > 0 && size+len(p) > maxBytes {
			break
		}
		size += len(p)
		dst = append(dst, p)
	}
	return dst, from
}

// offsetForTime returns the offset of the first retained event published
// at or after ts (unix microseconds) by a binary search over the ring, or
// tail when every retained event is older. Stamps that do not increase (a
// clock stepped back) make it one such event, not necessarily the first.
func (r *ring) offsetForTime(ts int64, tail uint64) uint64 {
	i := sort.Search(r.n, func(i int) bool { return r.ts[(r.head+i)%len(r.buf)] >= ts })
	if i == r.n {
		return tail
	}
	return r.start + uint64(i)
}
