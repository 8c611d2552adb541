package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// BenchmarkAck: b.N records of 256 bytes, consumed and acked by 4
// members (prefetch 64, one Ack call per Next batch); reports acked
// records per second. The stream is in memory and filled before the
// timer starts; the state is in memory, or in a disk log with
// SyncAlways (every Ack waits for an fsync, shared between concurrent
// Acks).
func BenchmarkAck(b *testing.B) {
	for _, state := range []string{"memory", "disk-always"} {
		b.Run("state="+state+"/members=4", func(b *testing.B) {
			opts := Options{}
			if state != "memory" {
				quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
				l, err := commitlog.Open(b.TempDir(), commitlog.Options{Sync: commitlog.SyncAlways, Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				opts.StateLog = l
			}
			benchAck(b, 4, 64, opts)
		})
	}
}

func benchAck(b *testing.B, members, prefetch int, opts Options) {
	stream := commitlog.NewMemory(b.N, 1<<40)
	payload := make([]byte, 256) // shared: the memory log keeps references
	batch := make([][]byte, 0, 4096)
	for left := b.N; left > 0; left -= len(batch) {
		batch = batch[:0]
		for range min(left, cap(batch)) {
			batch = append(batch, payload)
		}
		if _, err := stream.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	g, err := NewGroup("bench", stream, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var acked atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := range members {
		m, err := g.Join(fmt.Sprint("m", i), prefetch)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			offs := make([]uint64, 0, prefetch)
			for {
				ds, err := m.Next(ctx, 0)
				if err != nil {
					return
				}
				offs = offs[:0]
				for _, d := range ds {
					offs = append(offs, d.Offset)
				}
				if err := m.Ack(ctx, offs...); err != nil {
					b.Error(err)
					return
				}
				if acked.Add(int64(len(ds))) == int64(b.N) {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acks/s")
	if s := g.Stats(); s.Acked != uint64(b.N) || s.Lag != 0 {
		b.Fatalf("stats after the run: %+v", s)
	}
}
