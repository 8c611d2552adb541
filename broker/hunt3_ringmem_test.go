package broker

import (
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkCreateEmptyStream reports the bytes allocated per auto-created,
// never-published stream (B/op), ring included.
func BenchmarkCreateEmptyStream(b *testing.B) {
	br := New(Options{AutoCreateStreams: true, MaxAutoCreatedStreams: -1})
	names := make([]string, b.N)
	for i := range names {
		names[i] = "s" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := br.Stream("t", "ns", names[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmptyStreamsHeap measures the live heap held per empty stream for
// 10,000 auto-created streams with the default ring (1024 slots): an
// up-front slot array alone would be 24 KiB per stream, far above the
// bound (the figure was 479 B when the ring became lazy).
func TestEmptyStreamsHeap(t *testing.T) {
	const n = 10000
	names := make([]string, n)
	for i := range names {
		names[i] = "s" + strconv.Itoa(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	br := New(Options{AutoCreateStreams: true, MaxAutoCreatedStreams: -1})
	for _, name := range names {
		if _, err := br.Stream("t", "ns", name); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d empty streams: %d bytes live heap, %d bytes/stream", n, live, live/n)
	if live/n > 4096 {
		t.Errorf("an empty stream holds %d bytes of heap, want at most 4096", live/n)
	}
	runtime.KeepAlive(br)
}
