package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/felixmq/felix/wire"
)

// The payload sizes of the hunt19 tests: empty, one byte, the sizes
// around QUIC and read-buffer boundaries, and the largest event an acked
// publish of the default tenant and namespace can carry to stream (see
// hunt19MaxEvent).
const (
	kib = 1 << 10
	mib = 1 << 20
)

// hunt19MaxEvent is the largest payload Client.Publish (acked, binary)
// sends to default/default/stream within the default 16 MiB frame: the
// frame's overhead (request id, names, counts) is taken from the encoder
// itself, and the broker's own bound (the frame limit less 24 bytes of
// event framing) applies too.
func hunt19MaxEvent(t testing.TB, stream string) int {
	t.Helper()
	f, err := wire.AppendAckedPublishBatchFrame(nil, 1, wire.AckPerBatch, "default", "default", stream, [][]byte{{}})
	if err != nil {
		t.Fatal(err)
	}
	overhead := len(f) - wire.HeaderSize
	return min(wire.DefaultMaxFrameBytes-overhead, wire.DefaultMaxFrameBytes-24)
}

// hunt19Sizes is the mixed sequence of sizes every flow publishes, max
// being hunt19MaxEvent.
func hunt19Sizes(max int) []int {
	return []int{0, 1, 64 * kib, 256 * kib, mib, 4 * mib, max, 1, 4 * mib, 0, mib + 1, 256*kib - 1, 64*kib + 3}
}

// hunt19Payload is event id's payload of size bytes: pseudo-random bytes
// seeded by id, so that a payload shifted, truncated or swapped with
// another's shows in its hash.
func hunt19Payload(id uint64, size int) []byte {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], id)
	seed[31] = 19
	b := make([]byte, size)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// hunt19Sum is a payload's hash.
func hunt19Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// hunt19Want holds the hashes and sizes of published events, in order.
type hunt19Want struct {
	sums  [][32]byte
	sizes []int
}

func (w *hunt19Want) add(p []byte) {
	w.sums = append(w.sums, hunt19Sum(p))
	w.sizes = append(w.sizes, len(p))
}

// check compares the i-th event received with the i-th published.
func (w *hunt19Want) check(t testing.TB, who string, i int, got []byte) {
	t.Helper()
	if i >= len(w.sums) {
		t.Fatalf("%s: event %d of %d bytes beyond the %d published", who, i, len(got), len(w.sums))
	}
	if len(got) != w.sizes[i] || hunt19Sum(got) != w.sums[i] {
		t.Fatalf("%s: event %d: %d bytes, hash differs or size (want %d bytes): lost, reordered or corrupted", who, i, len(got), w.sizes[i])
	}
}
