package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Members consume and ack a durable group concurrently while the stream
// is published to and purged again and again; then the group crashes
// (abandoned, its state log as written). After the restart no record
// whose Ack returned nil comes back; the records taken back are at most
// those that were in flight or given back by a nack (the skips over purged records were written
// as snapshots, so the replay takes none of them for delivered ones); and
// draining the group acks every record the stream still holds.
func TestHunt13ConcurrentPurgesThenCrash(t *testing.T) {
	const members, prefetch, batches = 4, 8, 150
	logs := openDiskLogs(t, t.TempDir())
	clock := newFakeClock()
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: time.Hour, SnapshotEvery: 8, ReadBatch: 16, MaxAttempts: -1}
	}
	g := newGroupT(t, logs.stream, opts(logs))
	var mu sync.Mutex
	acked := map[uint64]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range members {
		m := joinT(t, g, string(rune('a'+i)), prefetch)
		wg.Go(func() {
			n := 0
			for {
				ds, err := m.Next(ctx, 0)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("Next: %v", err)
					}
					return
				}
				offs := offsets(ds)
				if ctx.Err() != nil {
					return // the crash: these stay in flight
				}
				if n++; n%10 == 0 { // one back for a redelivery
					if err := m.Nack(context.Background(), offs[0], 0); err != nil {
						t.Errorf("Nack: %v", err)
						return
					}
					offs = offs[1:]
				}
				if err := m.Ack(context.Background(), offs...); err != nil {
					t.Errorf("Ack: %v", err)
					return
				}
				mu.Lock()
				for _, o := range offs {
					if acked[o] {
						t.Errorf("%d delivered again after its ack", o)
					}
					acked[o] = true
				}
				mu.Unlock()
			}
		})
	}
	for b := range batches {
		fill(t, logs.stream, 10)
		if b%15 == 14 {
			if _, _, err := logs.stream.Purge(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(t, logs.stream, 100) // the crash comes while they are at work
	cancel()
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("before the crash: %+v", g.Stats())

	logs = logs.crash()
	g = newGroupT(t, logs.stream, opts(logs))
	defer g.Close()
	s := g.Stats()
	if s.Pending > members*prefetch || s.Lost > members*prefetch {
		t.Fatalf("after the crash %d pending and %d lost: more than the %d that can be in flight; %+v",
			s.Pending, s.Lost, members*prefetch, s)
	}
	m := joinT(t, g, "z", 64)
	for range 1000 {
		if s := g.Stats(); s.Lag == 0 && s.Cursor >= logs.stream.Oldest() {
			break
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		ds, err := m.Next(dctx, 0)
		dcancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range offsets(ds) {
			if acked[o] {
				t.Fatalf("%d redelivered after the crash, though acked", o)
			}
			acked[o] = true
		}
		ackT(t, m, offsets(ds)...)
	}
	for o := logs.stream.Oldest(); o < logs.stream.Next(); o++ {
		if !acked[o] {
			t.Fatalf("record %d (stream [%d, %d)) never delivered", o, logs.stream.Oldest(), logs.stream.Next())
		}
	}
}
