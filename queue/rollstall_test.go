package queue

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// within runs fn in a goroutine and fails the test if it has not returned
// after a generous bound: fn must not wait for what the test holds. (A
// liveness bound, not a timing assertion: fn needs no time at all.)
func within(t *testing.T, what string, fn func()) bool {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		t.Errorf("%s is blocked while another member's state write waits for the state log's roll fsync", what)
		return false
	}
}

// A state record that rolls the state log's segment fsyncs the segment
// (the default interval policy leaves it unsynced). The record is written
// under the group's order, but not under the group's lock: while that
// fsync is slow, the other members' Next, Nack and Join, and Stats, go
// on. Before, the append ran under the group's lock, and every member of
// the group stalled for the fsync.
func TestStateLogRollFsyncDoesNotStallOtherMembers(t *testing.T) {
	stream, state, hold, syncing, release := heldSyncLogs(t, commitlog.Options{SegmentBytes: 512})
	fill(t, stream, 200)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, StateLog: state, AckTimeout: time.Hour, SnapshotEvery: 1 << 20})
	a := joinT(t, g, "a", 100)
	b := joinT(t, g, "b", 10)
	dsA := nextT(t, a, 100)
	dsB := nextT(t, b, 2)

	hold.Store(true)
	acking := make(chan error, 1)
	go func() { // a acks one record at a time until an ack's record rolls the segment
		for _, d := range dsA {
			if err := a.Ack(context.Background(), d.Offset); err != nil {
				acking <- err
				return
			}
			select {
			case <-syncing:
				acking <- nil
				return
			default:
			}
		}
		acking <- nil
	}()
	select {
	case <-syncing: // an Ack of a is in the roll's fsync
	case err := <-acking:
		t.Fatalf("100 acks rolled no state-log segment (err %v)", err)
	}

	within(t, "Stats", func() { g.Stats() })
	within(t, "Next of member b", func() {
		if ds, err := b.Next(context.Background(), 1); err != nil || len(ds) != 1 {
			t.Errorf("Next of b: %v, %v", ds, err)
		}
	})
	within(t, "Nack of member b", func() {
		if err := b.Nack(context.Background(), dsB[0].Offset, time.Hour); err != nil {
			t.Errorf("Nack of b: %v", err)
		}
	})
	within(t, "Join", func() { joinT(t, g, "c", 1) })

	release()
	if err := <-acking; err != nil {
		t.Fatalf("Ack of a: %v", err)
	}
	// The acks that wait behind the roll are written after it, in order.
	ackT(t, b, dsB[1].Offset)
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// With a state log that seals segments in the background
// (commitlog.Options.RollInBackground), an Ack whose state record takes
// the segment past its size, and the Acks queued behind it, do not wait
// for the fsync that seals the segment either: their records go into it
// while the fsync runs. Without it, that Ack's append rolls first, and
// it and every state write queued behind it wait for the fsync.
func TestStateLogRollInBackgroundAcksDoNotWaitForSeal(t *testing.T) {
	stream, state, hold, syncing, release := heldSyncLogs(t, commitlog.Options{SegmentBytes: 2048, RollInBackground: true})
	fill(t, stream, 300)
	g := newGroupT(t, stream, Options{Clock: newFakeClock(), StateLog: state, AckTimeout: time.Hour, SnapshotEvery: 1 << 20})
	a := joinT(t, g, "a", 300)
	ds := nextT(t, a, 300)

	hold.Store(true)
	// a acks one record at a time until the state log's segment is past
	// its size and the seal's fsync is held, then 10 more.
	i := 0
	ack := func() {
		if err := a.Ack(context.Background(), ds[i].Offset); err != nil {
			t.Errorf("Ack %d: %v", ds[i].Offset, err)
		}
		i++
	}
	if !within(t, "Acks up to the state-log segment's size", func() {
		for i < len(ds) && state.Stats().Bytes+32 <= 2048 {
			ack()
		}
	}) {
		return // an ack still waits: i is its
	}
	if i == len(ds) {
		t.Fatal("the acks took no state-log segment past its size")
	}
	within(t, "the seal's fsync", func() { <-syncing })
	if !within(t, "Acks while the seal's fsync is held", func() {
		for range 10 {
			ack()
		}
	}) {
		return
	}
	if s := state.Stats(); s.Segments != 1 {
		t.Fatalf("state log %+v: want its one segment, still being sealed", s)
	}
	release()
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// heldSyncLogs opens a stream log and a group state log (with opts's
// SegmentBytes and RollInBackground; fsync interval of an hour), both
// closed at the end of the test. Once hold is set, the state log's next
// fsync closes syncing and waits until release is called (idempotent;
// called at the end of the test too).
func heldSyncLogs(t *testing.T, opts commitlog.Options) (stream, state *commitlog.DiskLog, hold *atomic.Bool, syncing chan struct{}, release func()) {
	t.Helper()
	hold = new(atomic.Bool)
	syncing, released := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	opts.OnSync = func(time.Duration) { // after an fsync of the state log's records
		if hold.CompareAndSwap(true, false) {
			close(syncing)
			<-released
		}
	}
	opts.Sync, opts.SyncInterval, opts.RetentionInterval, opts.Logger = commitlog.SyncInterval, time.Hour, -1, quietLogger()
	dir := t.TempDir()
	stream, err := commitlog.Open(filepath.Join(dir, "stream"), commitlog.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	state, err = commitlog.Open(filepath.Join(dir, "state"), opts)
	if err != nil {
		stream.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Close(); state.Close() })
	t.Cleanup(release) // runs first
	return stream, state, hold, syncing, release
}
