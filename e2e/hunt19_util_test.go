package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
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

// The frame limits of the hunt19 brokers and clients. The flows are the
// same at any limit; a small one keeps "the largest event" cheap under
// -race. Only TestHunt19PublisherSplitsBatchAtFrameLimit also runs at the
// default limit (wire.DefaultMaxFrameBytes).
const (
	// hunt19Frame is the limit of flows that read no commit log.
	hunt19Frame = 2 * mib
	// hunt19LogFrame is the limit of flows over durable streams and
	// caches: just above commitlog.MaxReadBuffer, so that the largest
	// record is read into a buffer of its own (see hunt19CrossesLogReads).
	hunt19LogFrame = commitlog.MaxReadBuffer + 64*kib
)

// hunt19Server is the server option of a broker with frame limit frame.
func hunt19Server(frame int) testbroker.Option {
	return testbroker.WithServerOptions(server.Options{MaxFrameBytes: frame})
}

// hunt19Dial dials tb with the client frame limit frame.
func hunt19Dial(t testing.TB, tb *testbroker.Broker, frame int, opts client.Options) *client.Client {
	t.Helper()
	opts.MaxFrameBytes = frame
	return dial(t, tb, opts)
}

// hunt19DialProc dials the broker process b with the client frame limit
// frame, waiting for it to come up.
func hunt19DialProc(t *testing.T, b *hunt14Broker, frame int) *client.Client {
	t.Helper()
	var c *client.Client
	testwait.Eventually(t, "the broker process answers a dial", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var err error
		c, err = client.Dial(ctx, b.addr, client.Options{CAFile: filepath.Join(b.dataDir, "dev-cert.pem"),
			Reconnect: client.ReconnectPolicy{Disabled: true}, RequestTimeout: testwait.Liveness, MaxFrameBytes: frame})
		return err == nil
	})
	return c
}

// hunt19MaxEvent is the largest payload Client.Publish (acked, binary)
// sends to default/default/stream within the frame limit frame: the
// frame's overhead (request id, names, counts) is taken from the encoder
// itself, and the broker's own bound (the frame limit less
// wire.MaxEventOverhead) applies too.
func hunt19MaxEvent(t testing.TB, frame int, stream string) int {
	t.Helper()
	f, err := wire.AppendAckedPublishBatchFrame(nil, 1, wire.AckPerBatch, "default", "default", stream, [][]byte{{}})
	if err != nil {
		t.Fatal(err)
	}
	overhead := len(f) - wire.HeaderSize
	return min(frame-overhead, frame-wire.MaxEventOverhead)
}

// hunt19CrossesLogReads fails the test unless a payload of size bytes
// takes a commit log record larger than every buffer a read shares
// (commitlog.MaxReadBuffer, itself above commitlog.DefaultReadBytes): the
// durable flows must keep one such record.
func hunt19CrossesLogReads(t testing.TB, size int) {
	t.Helper()
	if size < commitlog.MaxReadBuffer-24 || size <= commitlog.DefaultReadBytes {
		t.Fatalf("the largest payload (%d bytes) no longer crosses commitlog.MaxReadBuffer (%d): raise hunt19LogFrame", size, commitlog.MaxReadBuffer)
	}
}

// hunt19Sizes is the mixed sequence of sizes every flow publishes, max
// being hunt19MaxEvent: index 6 is the largest. Below it, the largest
// payload whose record still shares a commit log read buffer
// (commitlog.MaxReadBuffer less the 24-byte record header, less one), or
// max-1 when that is larger than max.
func hunt19Sizes(max int) []int {
	shared := min(commitlog.MaxReadBuffer-25, max-1)
	return []int{0, 1, 64 * kib, 256 * kib, mib, shared, max, 1, 0, mib + 1, 256*kib - 1, 64*kib + 3, 8*kib + 1}
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
