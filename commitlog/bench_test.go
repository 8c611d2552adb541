package commitlog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// BenchmarkAppend: b.N appends of one 256-byte record, shared among a
// fixed number of concurrent writers, per sync policy. Reports fsyncs per
// append (group commit shows as well below 1 under SyncAlways).
func BenchmarkAppend(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", p, writers), func(b *testing.B) {
				l := openT(b, b.TempDir(), Options{Sync: p, Logger: quietLogger()})
				before := l.Stats().Fsyncs
				appendConcurrently(b, l, writers, nil)
				b.ReportMetric(float64(l.Stats().Fsyncs-before)/float64(b.N), "fsyncs/op")
			})
		}
	}
}

// appendConcurrently makes b.N appends of one 256-byte record, shared
// among writers goroutines, timed; observe, when set, gets each append's
// latency and its writer's number (from that writer's goroutine).
func appendConcurrently(b *testing.B, l *DiskLog, writers int, observe func(w int, d time.Duration)) {
	rec := [][]byte{make([]byte, 256)}
	var left atomic.Int64
	left.Store(int64(b.N))
	b.SetBytes(256)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				var start time.Time
				if observe != nil {
					start = time.Now()
				}
				if _, err := l.Append(context.Background(), rec); err != nil {
					b.Error(err)
					return
				}
				if observe != nil {
					observe(w, time.Since(start))
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
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

// BenchmarkAppendRollLatency: appends of one 256-byte record to a log of
// 1 MiB segments (a roll every ~3,900 records) by concurrent Append
// callers, reporting each append's latency as percentiles and max (µs).
// The rolls show in the tail: every append waiting behind a roll takes
// its time. Under SyncAlways one caller's appends are ~4,000 fsyncs per
// roll, so only many callers (group commit) roll often enough to show;
// run with a fixed -benchtime (e.g. 200000x) for a few dozen rolls.
//
// Each case runs with the roll in the append (bg=false) and with
// Options.RollInBackground (bg=true), as felix serve opens durable
// streams.
func BenchmarkAppendRollLatency(b *testing.B) {
	for _, c := range []struct {
		sync    SyncPolicy
		writers int
	}{{SyncInterval, 1}, {SyncInterval, 16}, {SyncAlways, 16}} {
		for _, bg := range []bool{false, true} {
			p, writers := c.sync, c.writers
			b.Run(fmt.Sprintf("sync=%s/writers=%d/bg=%v", p, writers, bg), func(b *testing.B) {
				benchRollLatency(b, Options{Sync: p, SegmentBytes: 1 << 20, Logger: quietLogger(), RetentionInterval: -1, RollInBackground: bg}, writers)
			})
		}
	}
}

// benchRollLatency is one case of BenchmarkAppendRollLatency.
func benchRollLatency(b *testing.B, opts Options, writers int) {
	l := openT(b, b.TempDir(), opts)
	hists := make([]*hdrhistogram.Histogram, writers)
	for i := range hists {
		hists[i] = hdrhistogram.New(1, int64(10*time.Second), 3)
	}
	appendConcurrently(b, l, writers, func(w int, d time.Duration) { hists[w].RecordValue(int64(d)) })
	all := hists[0]
	for _, h := range hists[1:] {
		all.Merge(h)
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	b.ReportMetric(us(all.ValueAtQuantile(50)), "p50-µs")
	b.ReportMetric(us(all.ValueAtQuantile(99)), "p99-µs")
	b.ReportMetric(us(all.ValueAtQuantile(99.9)), "p999-µs")
	b.ReportMetric(us(all.Max()), "max-µs")
	b.ReportMetric(float64(l.Stats().Segments-1), "rolls")
}
