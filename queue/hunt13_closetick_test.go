package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A group closed (the server draining) while a Tick is still dead-
// lettering, and a consumer that leaves at that moment giving back a
// delivery it never saw: Close (which waits for the dead letter) writes
// the lowered attempt count in its snapshot, and nothing the Tick had
// collected before may land after it with the higher count. After the
// restart the record comes back with the count Close wrote.
func TestHunt13CloseDuringTickKeepsLoweredCount(t *testing.T) {
	logs := openDiskLogs(t, t.TempDir())
	fill(t, logs.stream, 2) // 0: the record given back unseen; 1: dead-lettered
	clock := newFakeClock()
	var b *Member
	var g *Group
	var once sync.Once
	closed := make(chan error, 1)
	dl := func(ctx context.Context, rec commitlog.Record, attempts int, reason string) error {
		once.Do(func() {
			b.LeaveSeen() // 0 was not seen: its count goes back to 1
			waiting := make(chan struct{})
			g.hooks.closeWaits = func() { close(waiting) }
			go func() { closed <- g.Close() }()
			select {
			case <-waiting: // Close waits for this dead letter
			case err := <-closed: // (it should not return first)
				closed <- err
			}
		})
		return nil
	}
	opts := func(d *diskLogs) Options {
		return Options{Clock: clock, StateLog: d.state, AckTimeout: 10 * time.Second, MaxAttempts: 3, DeadLetter: dl}
	}
	g = newGroupT(t, logs.stream, opts(logs))
	b = joinT(t, g, "b", 1)
	c := joinT(t, g, "c", 1)
	if got := offsets(nextT(t, b, 0)); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("b got %v", got)
	}
	g.Tick(clock.Now()) // writes 0's first attempt
	// 1 goes to its last attempt, in flight to c.
	for range 2 {
		if got := offsets(nextT(t, c, 0)); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("c got %v", got)
		}
		if err := c.Nack(t.Context(), 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	if ds := nextT(t, c, 0); !slices.Equal(offsets(ds), []uint64{1}) || ds[0].Attempt != 3 {
		t.Fatalf("c got %v %v", offsets(ds), attempts(ds))
	}
	if err := b.Nack(t.Context(), 0, 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second)
	if ds := nextT(t, b, 0); !slices.Equal(offsets(ds), []uint64{0}) || ds[0].Attempt != 2 {
		t.Fatalf("b got %v %v", offsets(ds), attempts(ds))
	}
	// 1 times out at its last attempt: the Tick dead-letters it, and the
	// group closes meanwhile.
	g.Tick(clock.Advance(5 * time.Second))
	if err := <-closed; err != nil {
		t.Fatal(err)
	}

	logs = logs.crash()
	g2 := newGroupT(t, logs.stream, opts(logs))
	defer g2.Close()
	ds := nextT(t, joinT(t, g2, "d", 0), 0)
	if !slices.Equal(offsets(ds), []uint64{0}) || ds[0].Attempt != 2 {
		t.Fatalf("after the restart %v %v, want 0 at attempt 2 (its one seen delivery + 1)", offsets(ds), attempts(ds))
	}
}
