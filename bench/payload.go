package bench

import (
	"encoding/binary"
	"time"
)

// Every payload the harness publishes starts with a 16-byte header, both
// fields little-endian:
//
//	bytes 0..7   send time: nanoseconds since the run's clock base (monotonic)
//	bytes 8..15  sequence number, 0-based over the whole run (warm-up first)
//
// The rest is filler. Receivers decode the header to compute latency and to
// detect loss, duplicates and reordering.
const payloadHeaderSize = 16

// clock reads monotonic nanoseconds since a base instant taken at the start
// of a run, so that timestamps fit in a payload and survive a wall-clock step.
type clock struct{ base time.Time }

func newClock() clock { return clock{base: time.Now()} }

// now returns nanoseconds since the clock's base.
func (c clock) now() int64 { return int64(time.Since(c.base)) }

// stampPayload writes the header into p (len(p) >= payloadHeaderSize).
func stampPayload(p []byte, sentNs int64, seq uint64) {
	binary.LittleEndian.PutUint64(p[0:8], uint64(sentNs))
	binary.LittleEndian.PutUint64(p[8:16], seq)
}

// readPayload decodes the header; ok is false when p is too short.
func readPayload(p []byte) (sentNs int64, seq uint64, ok bool) {
	if len(p) < payloadHeaderSize {
		return 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(p[0:8])), binary.LittleEndian.Uint64(p[8:16]), true
}

// newPayloads allocates n payload buffers of size bytes with a fixed filler.
func newPayloads(n, size int) [][]byte {
	buf := make([]byte, n*size)
	for i := range buf {
		buf[i] = 'a' + byte(i%size%26)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	return out
}
