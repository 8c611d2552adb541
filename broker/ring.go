package broker

// ring is the bounded in-memory replay buffer of a stream: the newest
// events, bounded by count and payload bytes. Entries alias the immutable
// shared frames, so retaining an event costs no copy. Not safe for
// concurrent use (the stream lock guards it).
type ring struct {
	buf      [][]byte // circular; entry i holds offset start+i
	head     int      // index of the oldest entry
	n        int
	start    uint64 // offset of the oldest entry
	bytes    int
	maxBytes int
}

func (r *ring) init(capacity, maxBytes int) {
	if capacity > 0 {
		r.buf = make([][]byte, capacity)
	}
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
// offsets from off.
func (r *ring) pushAll(off uint64, payloads [][]byte) {
	if len(r.buf) == 0 {
		return
	}
	for i, p := range payloads {
		r.push(off+uint64(i), p)
	}
}

func (r *ring) push(off uint64, p []byte) {
	if r.n == 0 {
		r.start = off
	}
	if r.n == len(r.buf) {
		r.evict()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = p
	r.n++
	r.bytes += len(p)
	for r.bytes > r.maxBytes && r.n > 1 {
		r.evict()
	}
}

func (r *ring) evict() {
	r.bytes -= len(r.buf[r.head])
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.start++
}

// since returns the retained payloads from offset from (≥ oldest) to the tail.
func (r *ring) since(from uint64) [][]byte {
	if r.n == 0 || from >= r.start+uint64(r.n) {
		return nil
	}
	skip := int(from - r.start)
	out := make([][]byte, 0, r.n-skip)
	for i := skip; i < r.n; i++ {
		out = append(out, r.buf[(r.head+i)%len(r.buf)])
	}
	return out
}
