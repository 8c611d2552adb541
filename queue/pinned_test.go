package queue

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A record in flight holds its payload, and nothing more: MaxInFlightBytes
// bounds the memory a member's deliveries keep. A disk stream's Read hands
// out payloads that share read buffers (64 KiB to 4 MiB); before, one
// small record left in flight kept its whole buffer alive, uncounted. The
// test leaves one 1 KiB record of a 1 MiB read in flight and measures
// what its ack frees.
func TestInFlightRecordDoesNotPinReadBuffer(t *testing.T) {
	const kib = 1 << 10
	stream, err := commitlog.Open(filepath.Join(t.TempDir(), "stream"), commitlog.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Close() })
	sizes := make([]int, 1024)
	for i := range sizes {
		sizes[i] = kib
	}
	appendSized(t, stream, sizes...)
	const bound = 2 << 20
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), MaxInFlightBytes: bound, ReadBatch: 1024})
	defer g.Close()
	m := joinT(t, g, "a", 1024)
	ds := nextT(t, m, 0)
	if len(ds) < 512 {
		t.Fatalf("Next got %d records, want a read's worth", len(ds))
	}
	held := ds[len(ds)-1].Offset
	var acks []uint64
	for _, d := range ds[:len(ds)-1] {
		acks = append(acks, d.Offset)
	}
	ds = nil
	ackT(t, m, acks...)
	if s := g.Stats(); s.InFlight != 1 || s.InFlightBytes != kib {
		t.Fatalf("stats %+v, want one 1 KiB record in flight", s)
	}
	before := liveHeap()
	ackT(t, m, held)
	after := liveHeap()
	freed := int64(before) - int64(after)
	t.Logf("acking the last record in flight freed %d bytes", freed)
	if freed > 32*kib {
		t.Fatalf("acking the one 1 KiB record in flight freed %d KiB: it kept its stream read buffer alive, which Stats.InFlightBytes (1 KiB) and MaxInFlightBytes do not count", freed/kib)
	}
	runtime.KeepAlive(ds)
}
