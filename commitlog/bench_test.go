package commitlog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend: b.N appends of one 256-byte record, shared among a
// fixed number of concurrent writers, per sync policy. Reports fsyncs per
// append (group commit shows as well below 1 under SyncAlways).
func BenchmarkAppend(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", p, writers), func(b *testing.B) {
				l := openT(b, b.TempDir(), Options{Sync: p, Logger: quietLogger()})
				rec := [][]byte{make([]byte, 256)}
				before := l.Stats().Fsyncs
				var left atomic.Int64
				left.Store(int64(b.N))
				b.SetBytes(256)
				b.ResetTimer()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							if _, err := l.Append(context.Background(), rec); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(l.Stats().Fsyncs-before)/float64(b.N), "fsyncs/op")
			})
		}
	}
}

// BenchmarkRead: sequential reads of 100 records of 256 bytes through the
// index, from a log in the page cache.
func BenchmarkRead(b *testing.B) {
	l := openT(b, b.TempDir(), Options{Sync: SyncNever, SegmentBytes: 4 << 20, Logger: quietLogger()})
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = make([]byte, 256)
	}
	for range 1000 {
		if _, err := l.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(100 * 256)
	b.ResetTimer()
	from := uint64(0)
	for range b.N {
		rs, err := l.Read(from, 100, 1<<20)
		if err != nil || len(rs) != 100 {
			b.Fatalf("Read(%d): %d records, %v", from, len(rs), err)
		}
		from = (from + 100) % l.Next()
	}
}

// BenchmarkReopenSmallLog: reopening a log with a few records, as a broker
// with thousands of durable streams does for each at start. Its bytes/op
// is what recovery allocates per log.
func BenchmarkReopenSmallLog(b *testing.B) {
	dir := b.TempDir()
	opts := Options{Sync: SyncNever, Logger: quietLogger(), RetentionInterval: -1}
	l, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	appendN(b, l, 3, 3)
	l.Close()
	b.ReportAllocs()
	for b.Loop() {
		l, err := Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}
