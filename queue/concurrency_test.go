package queue

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// 100,000 records over 4 members acking everything they get, while a
// producer is still appending: every offset is acked exactly once and
// none is lost.
func TestEveryRecordAckedExactlyOnce(t *testing.T) {
	const n = 100_000
	stream := commitlog.NewMemory(n, 1<<30)
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), ReadBatch: 100})
	defer g.Close()

	fill(t, stream, n/2)
	producer := make(chan error, 1)
	go func() { // the rest arrives while the members consume
		for i := n / 2; i < n; i++ {
			if _, err := stream.Append(context.Background(), [][]byte{recPayload(uint64(i))}); err != nil {
				producer <- err
				return
			}
		}
		producer <- nil
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acks := make([]atomic.Int32, n)
	var total atomic.Int64
	var wg sync.WaitGroup
	for i, prefetch := range []int{1, 7, 64, 300} {
		m := joinT(t, g, string(rune('a'+i)), prefetch)
		wg.Go(func() {
			consume(ctx, t, m, 0, func(ds []Delivery) {
				offs := offsets(ds)
				for _, d := range ds {
					if d.Attempt != 1 || string(d.Payload) != string(recPayload(d.Offset)) {
						t.Errorf("delivery %d: attempt %d payload %q", d.Offset, d.Attempt, d.Payload)
					}
					acks[d.Offset].Add(1)
				}
				// Ack one by one or all at once, alternately.
				if offs[0]%2 == 0 {
					for _, o := range offs {
						ackT(t, m, o)
					}
				} else {
					ackT(t, m, offs...)
				}
				if total.Add(int64(len(ds))) == n {
					cancel()
				}
			})
		})
	}
	wg.Wait()
	if err := <-producer; err != nil {
		t.Fatalf("producer: %v", err)
	}
	checkAckedOnce(t, acks)
	s := g.Stats()
	if s.Acked != n || s.Delivered != n || s.Redelivered != 0 || s.Lag != 0 || s.InFlight != 0 || s.Pending != 0 ||
		s.Floor != n || s.Cursor != n || s.Lost != 0 {
		t.Fatalf("stats after draining: %+v", s)
	}
}

func recPayload(off uint64) []byte { return []byte("rec-" + strconv.FormatUint(off, 10)) }

// Members whose acks and nacks come from other goroutines (as over the
// network) never hold more than their prefetch, checked at every Next
// return; everything is still acked exactly once.
func TestPrefetchNeverExceeded(t *testing.T) {
	const n = 20_000
	stream := memStream(t, n)
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), MaxAttempts: -1})
	defer g.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acks := make([]atomic.Int32, n)
	var total atomic.Int64
	var wg sync.WaitGroup
	for i, prefetch := range []int{1, 2, 5, 16} {
		m := joinT(t, g, string(rune('a'+i)), prefetch)
		work := make(chan Delivery, 64)
		wg.Go(func() { // the acker: nacks every 7th first attempt
			for d := range work {
				if d.Offset%7 == 0 && d.Attempt == 1 {
					if err := m.Nack(ctx, d.Offset, 0); err != nil {
						t.Errorf("Nack: %v", err)
					}
					continue
				}
				acks[d.Offset].Add(1)
				ackT(t, m, d.Offset)
				if total.Add(1) == n {
					cancel()
				}
			}
		})
		wg.Go(func() {
			defer close(work)
			consume(ctx, t, m, 3, func(ds []Delivery) {
				for _, d := range ds {
					work <- d
				}
			})
		})
	}
	wg.Wait()
	checkAckedOnce(t, acks)
	s := g.Stats()
	wantNacked := uint64((n + 6) / 7)
	if s.Acked != n || s.Nacked != wantNacked || s.Redelivered != wantNacked || s.Lag != 0 {
		t.Fatalf("stats: %+v (want %d nacked and redelivered)", s, wantNacked)
	}
}

func checkAckedOnce(t *testing.T, acks []atomic.Int32) {
	t.Helper()
	for off := range acks {
		if c := acks[off].Load(); c != 1 {
			t.Fatalf("offset %d acked %d times", off, c)
		}
	}
}
