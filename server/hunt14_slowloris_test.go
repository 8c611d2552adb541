package server_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

// Frame headers announcing the largest payload the broker accepts, each
// followed by a few bytes and then nothing, cost the broker about what it
// received (plus a read chunk per stream), not what they announce: 64
// streams announcing 16 MiB each (1 GiB) hold a few MiB of heap.
func TestHunt14StalledLargeFramesHoldLittleMemory(t *testing.T) {
	const streams = 64
	tb := startTB(t)
	c := dialRaw(t, tb)
	c.open().auth("t1", nil)
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	ss := make([]*rawStream, streams)
	for i := range ss {
		ss[i] = c.open()
		ss[i].auth("t1", nil)
		ss[i].send(wire.AppendHeader(nil, wire.FlagBinaryPublishBatch, wire.DefaultMaxFrameBytes))
		ss[i].send(make([]byte, 100))
	}
	// Every stream's first bytes are read once the broker answers a
	// stream opened after them (streams are served in parallel, so wait
	// a moment for the reads in progress).
	probe := c.open()
	probe.auth("t1", nil)
	time.Sleep(100 * time.Millisecond)
	after := heap()
	if grew := int64(after) - int64(before); grew > streams*256<<10 {
		t.Fatalf("heap grew %d MiB for %d stalled frames announcing %d MiB each", grew>>20, streams, wire.DefaultMaxFrameBytes>>20)
	}
	if n := tb.Server.Stats().ConnectionsOpen.Load(); n != 1 {
		t.Fatalf("connections open %d", n)
	}
}
