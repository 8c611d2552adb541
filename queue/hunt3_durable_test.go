package queue

import (
	"slices"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A stream that lost its unsynced tail (a power loss under SyncInterval)
// reuses the offsets of the lost records for new ones. The group's state
// log still holds acks of the lost records at those offsets: they must
// not make the new records done after the next restart. (Before, restore
// dropped the state beyond the stream's end in memory only, and a second
// restart replayed the old acks: the new records, never acked, were never
// delivered again.)
func TestDurableStateBeyondStreamEndForgotten(t *testing.T) {
	state := commitlog.NewMemory(0, 0)
	clock := newFakeClock()
	opts := Options{StateLog: state, Clock: clock, AckTimeout: time.Minute}

	before := memStream(t, 10)
	g := newGroupT(t, before, opts)
	m := joinT(t, g, "m", 10)
	ackT(t, m, offsets(nextT(t, m, 0))...) // 0..9 acked
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	// The stream comes back with only 0..4; 5..9 are written again, new.
	after := memStream(t, 5)
	g = newGroupT(t, after, opts)
	if s := g.Stats(); s.Cursor != 5 || s.Floor != 5 || s.Lag != 0 {
		t.Fatalf("after the tail loss: %+v", s)
	}
	fill(t, after, 5)
	m = joinT(t, g, "m", 10)
	if got := offsets(nextT(t, m, 0)); !slices.Equal(got, []uint64{5, 6, 7, 8, 9}) {
		t.Fatalf("new records %v", got)
	}
	ackT(t, m, 5) // 6..9 stay unacked
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	g = newGroupT(t, after, opts)
	if s := g.Stats(); s.Pending != 4 || s.Lag != 4 || s.Floor != 6 {
		t.Fatalf("after the second restart: %+v (want 6..9 pending)", s)
	}
	ds := nextT(t, joinT(t, g, "m", 10), 0)
	if !slices.Equal(offsets(ds), []uint64{6, 7, 8, 9}) || !slices.Equal(attempts(ds), []int{2, 2, 2, 2}) {
		t.Fatalf("after the second restart: %v %v", offsets(ds), attempts(ds))
	}
}

// A state log naming an offset far beyond the stream's end (a log from
// another stream, or one the stream's tail was lost under) costs the
// replay nothing: the offsets beyond the stream are dropped, not
// enumerated. (Before, the replay made every offset up to the named one
// pending, one by one: an op at 1<<40 hung NewGroup and grew its memory
// without bound.)
func TestDurableReplayBoundedByStream(t *testing.T) {
	stream := memStream(t, 3)
	state := commitlog.NewMemory(0, 0)
	snap := snapshot{name: "g"}
	ops := []op{{kind: opAck, off: 1}, {kind: opDelivered, off: 1 << 40, attempts: 2}}
	if _, err := state.Append(t.Context(), [][]byte{appendSnapshot(nil, &snap), appendOps(nil, 0, ops)}); err != nil {
		t.Fatal(err)
	}
	g := newGroupT(t, stream, Options{StateLog: state, Clock: newFakeClock()})
	if s := g.Stats(); s.Pending != 2 || s.Cursor != 3 || s.Lag != 2 {
		t.Fatalf("after the replay: %+v", s)
	}
	ds := nextT(t, joinT(t, g, "m", 0), 0)
	if !slices.Equal(offsets(ds), []uint64{0, 2}) || !slices.Equal(attempts(ds), []int{1, 1}) {
		t.Fatalf("deliveries %v %v", offsets(ds), attempts(ds))
	}
	// The restart wrote a snapshot of what it kept: the far offset is gone.
	r, err := replayState("g", state, 1<<41)
	if err != nil {
		t.Fatal(err)
	}
	if r.cursor != 3 {
		t.Fatalf("replay after the restart: cursor %d, want 3", r.cursor)
	}
}

// A record redelivered forever (MaxAttempts -1) saturates its attempt
// count at the largest one the state log holds, so the group's own state
// stays readable. (Before, the count went one past it, was written, and
// the next NewGroup failed with a corrupt-state error: the group could
// not be opened again.)
func TestDurableAttemptCountSaturates(t *testing.T) {
	stream := memStream(t, 1)
	state := commitlog.NewMemory(0, 0)
	snap := snapshot{name: "g", cursor: 1, pending: []pendingRec{{off: 0, attempts: maxAttemptsEncoded}}}
	if _, err := state.Append(t.Context(), [][]byte{appendSnapshot(nil, &snap)}); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	opts := Options{StateLog: state, Clock: clock, MaxAttempts: -1}
	g := newGroupT(t, stream, opts)
	m := joinT(t, g, "m", 0)
	for range 2 {
		ds := nextT(t, m, 0)
		if len(ds) != 1 || ds[0].Attempt != maxAttemptsEncoded {
			t.Fatalf("delivery %v %v, want attempt %d", offsets(ds), attempts(ds), maxAttemptsEncoded)
		}
		if err := m.Nack(t.Context(), 0, 0); err != nil {
			t.Fatal(err)
		}
		g.Tick(clock.Now()) // writes the attempt count
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup("g", stream, opts)
	if err != nil {
		t.Fatalf("NewGroup after the restart: %v", err)
	}
	if ds := nextT(t, joinT(t, g, "m", 0), 0); len(ds) != 1 || ds[0].Attempt != maxAttemptsEncoded {
		t.Fatalf("after the restart: %v %v", offsets(ds), attempts(ds))
	}
}
