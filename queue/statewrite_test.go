package queue

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/fulldisk"
)

// An ack whose state write fails on a full disk returns a StateWriteError
// that names the group and the OS reason but not the server's files (the
// message goes to consumers), matches ENOSPC, and is counted; the ack holds
// in memory (no redelivery while the group runs), and acks are written
// again once the disk has room.
func TestStateWriteErrorOnFullDisk(t *testing.T) {
	stream := memStream(t, 3)
	state := fulldisk.New(commitlog.NewMemory(0, 0))
	g := newGroupT(t, stream, Options{StateLog: state, Clock: newFakeClock()})
	m := joinT(t, g, "m", 0)
	nextT(t, m, 0)
	state.Full.Store(true)
	err := m.Ack(context.Background(), 0)
	var swe *StateWriteError
	if !errors.As(err, &swe) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Ack on a full disk: %v, want a StateWriteError wrapping ENOSPC", err)
	}
	want := `queue: group "g": write state: storage write failed: no space left on device`
	if err.Error() != want {
		t.Fatalf("Ack on a full disk: %q, want %q", err, want)
	}
	if s := g.Stats(); s.StateErrors != 1 || s.Acked != 1 || s.InFlight != 2 {
		t.Fatalf("stats after the failed write: %+v", s)
	}
	state.Full.Store(false)
	if err := m.Ack(context.Background(), 1); err != nil {
		t.Fatalf("Ack once the disk has room: %v", err)
	}
	if s := g.Stats(); s.StateErrors != 1 || s.Acked != 2 || s.InFlight != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

// An ack whose state record a full disk refused becomes durable at the
// next Tick once the disk has room (a snapshot carries it): a restart then
// redelivers only what was not acked (before: the refused ack stayed in
// memory only until some later snapshot, and a restart redelivered it).
func TestRefusedAckDurableAfterNextTick(t *testing.T) {
	stream := memStream(t, 3)
	state := fulldisk.New(commitlog.NewMemory(0, 0))
	clock := newFakeClock()
	opts := Options{StateLog: state, Clock: clock}
	g := newGroupT(t, stream, opts)
	m := joinT(t, g, "m", 0)
	if got := offsets(nextT(t, m, 0)); len(got) != 3 {
		t.Fatalf("delivered %v, want 3 records", got)
	}
	state.Full.Store(true)
	if err := m.Ack(context.Background(), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Ack on a full disk: %v", err)
	}
	g.Tick(clock.Advance(time.Second)) // still full: the snapshot fails too
	state.Full.Store(false)
	g.Tick(clock.Advance(time.Second))
	// The broker crashes (the group is never closed) and starts again.
	g2 := newGroupT(t, stream, opts)
	m2 := joinT(t, g2, "m2", 0)
	if got := offsets(nextT(t, m2, 0)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("after a restart the group delivers %v, want [1 2] (0 was acked)", got)
	}
}
