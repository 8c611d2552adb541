package queue

import (
	"context"
	"errors"
	"fmt"
	"github.com/felixmq/felix/internal/testclock"
	"sync"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// fakeClock moves only when told.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock { return testclock.New() }

// fill appends n records to l; record i's payload names its offset.
func fill(t testing.TB, l commitlog.Log, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 1000)
		batch := make([][]byte, k)
		next := l.Next()
		for i := range batch {
			batch[i] = fmt.Appendf(nil, "rec-%d", next+uint64(i))
		}
		if _, err := l.Append(context.Background(), batch); err != nil {
			t.Fatalf("append: %v", err)
		}
		n -= k
	}
}

func newGroupT(t testing.TB, stream commitlog.Log, opts Options) *Group {
	t.Helper()
	g, err := NewGroup("g", stream, opts)
	if err != nil {
		t.Fatalf("NewGroup: %v", err)
	}
	return g
}

func joinT(t testing.TB, g *Group, id string, prefetch int) *Member {
	t.Helper()
	m, err := g.Join(id, prefetch)
	if err != nil {
		t.Fatalf("Join %s: %v", id, err)
	}
	return m
}

// nextT is a Next that must return deliveries without blocking for long
// (the test has made them available).
func nextT(t testing.TB, m *Member, max int) []Delivery {
	t.Helper()
	ds, err := m.Next(context.Background(), max)
	if err != nil {
		t.Fatalf("Next(%s): %v", m.ID(), err)
	}
	return ds
}

// asyncNext runs Next in a goroutine; receive from the channel for its
// result.
type nextResult struct {
	ds  []Delivery
	err error
}

func asyncNext(ctx context.Context, m *Member, max int) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		ds, err := m.Next(ctx, max)
		ch <- nextResult{ds, err}
	}()
	return ch
}

func offsets(ds []Delivery) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Offset
	}
	return out
}

func attempts(ds []Delivery) []int {
	out := make([]int, len(ds))
	for i, d := range ds {
		out[i] = d.Attempt
	}
	return out
}

func ackT(t testing.TB, m *Member, offs ...uint64) {
	t.Helper()
	if err := m.Ack(context.Background(), offs...); err != nil {
		t.Fatalf("Ack(%s, %v): %v", m.ID(), offs, err)
	}
}

func wantNotInFlight(t testing.TB, err error, offs ...uint64) {
	t.Helper()
	var nif *NotInFlightError
	if !errors.As(err, &nif) {
		t.Fatalf("got %v, want *NotInFlightError", err)
	}
	if fmt.Sprint(nif.Offsets) != fmt.Sprint(offs) {
		t.Fatalf("NotInFlightError offsets %v, want %v", nif.Offsets, offs)
	}
}

// deadLetters records DeadLetter calls.
type deadLetters struct {
	mu    sync.Mutex
	calls []deadCall
	fail  error
}

type deadCall struct {
	off      uint64
	payload  string
	attempts int
	reason   string
}

func (d *deadLetters) fn(ctx context.Context, rec commitlog.Record, attempts int, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.calls = append(d.calls, deadCall{rec.Offset, string(rec.Payload), attempts, reason})
	return nil
}

func (d *deadLetters) got() []deadCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadCall(nil), d.calls...)
}

// consume runs Next(ctx, max) on m until ctx ends, checking at every
// return that m holds no more than its prefetch, and hands each batch to
// handle.
func consume(ctx context.Context, t *testing.T, m *Member, max int, handle func([]Delivery)) {
	limit := m.Prefetch()
	if max > 0 {
		limit = min(limit, max)
	}
	for {
		ds, err := m.Next(ctx, max)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("Next(%s): %v", m.ID(), err)
			}
			return
		}
		if in := m.InFlight(); in > m.Prefetch() || len(ds) > limit {
			t.Errorf("member %s: %d in flight, %d delivered, prefetch %d, max %d", m.ID(), in, len(ds), m.Prefetch(), max)
		}
		handle(ds)
	}
}

// memStream is a memory stream holding n records.
func memStream(t testing.TB, n int) *commitlog.Memory {
	s := commitlog.NewMemory(max(n, commitlog.DefaultMemoryRecords), 1<<30)
	fill(t, s, n)
	return s
}
