package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// heldPendingBytes is the payload bytes the group's entries hold for
// records not in flight (ready, delayed, doomed).
func heldPendingBytes(g *Group) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := int64(0)
	for _, e := range g.entries {
		if e.state != stInFlight {
			n += int64(len(e.rec.Payload))
		}
	}
	return n
}

// bigPayload is record off's payload in fillBig: size bytes naming off.
func bigPayload(off uint64, size int) []byte {
	p := bytes.Repeat([]byte{'x'}, size)
	copy(p, fmt.Sprintf("rec-%d-", off))
	return p
}

func fillBig(t testing.TB, l commitlog.Log, n, size int) {
	t.Helper()
	for range n {
		if _, err := l.Append(context.Background(), [][]byte{bigPayload(l.Next(), size)}); err != nil {
			t.Fatal(err)
		}
	}
}

// A member that nacks everything it gets with a long delay, and takes
// more, made the group hold the payload of every record it had nacked,
// however many: MaxInFlightBytes bounds what is in flight only, and a
// nacked record is not. A record waiting out a delay (a nack's, or a
// timeout's backoff) now holds no payload: it is read again from the
// stream when it is redelivered (Stats.Unloaded, Stats.Reloaded).
func TestNackedPayloadsNotHeldWhileDelayed(t *testing.T) {
	const n, size = 200, 1024
	stream := commitlog.NewMemory(1000, 1<<30)
	fillBig(t, stream, n, size)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, MaxInFlightBytes: 8 * size, AckTimeout: time.Hour})
	m := joinT(t, g, "m", 1000)
	for delivered := 0; delivered < n; {
		ds := nextT(t, m, 0)
		for _, d := range ds {
			if err := m.Nack(context.Background(), d.Offset, 24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		delivered += len(ds)
	}
	if held := heldPendingBytes(g); held > 8*size {
		t.Fatalf("the group holds %d payload bytes of nacked records waiting for their redelivery (MaxInFlightBytes %d)", held, 8*size)
	}
	s := g.Stats()
	if s.Pending != n || s.Unloaded != n || s.PendingBytes != 0 {
		t.Fatalf("stats after the nacks: pending %d, unloaded %d, pending bytes %d; want %d, %d, 0", s.Pending, s.Unloaded, s.PendingBytes, n, n)
	}
	// After the delay the records come back, read again from the stream.
	clock.Advance(24 * time.Hour)
	got := 0
	for got < n {
		ds := nextT(t, m, 0)
		for _, d := range ds {
			if d.Attempt != 2 || !bytes.Equal(d.Payload, bigPayload(d.Offset, size)) {
				t.Fatalf("redelivery of %d: attempt %d, payload %.12q...", d.Offset, d.Attempt, d.Payload)
			}
		}
		ackT(t, m, offsets(ds)...)
		got += len(ds)
	}
	if s := g.Stats(); s.Reloaded != n || s.Unloaded != 0 || s.Pending != 0 || s.Acked != n {
		t.Fatalf("stats after the redeliveries: %+v", s)
	}
}

// A delayed record that the stream drops while it waits (a purge) is not
// redelivered: it is lost, as before, and its payload is not read back.
func TestUnloadedRecordPurgedIsLost(t *testing.T) {
	stream := commitlog.NewMemory(1000, 1<<30)
	fill(t, stream, 3)
	clock := newFakeClock()
	g := newGroupT(t, stream, Options{Clock: clock, AckTimeout: time.Hour})
	m := joinT(t, g, "m", 10)
	ds := nextT(t, m, 0)
	for _, d := range ds {
		if err := m.Nack(context.Background(), d.Offset, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := stream.Purge(); err != nil {
		t.Fatal(err)
	}
	fill(t, stream, 1)
	clock.Advance(time.Minute)
	if got := offsets(nextT(t, m, 0)); fmt.Sprint(got) != "[3]" {
		t.Fatalf("after the purge Next delivered %v, want [3]", got)
	}
	if s := g.Stats(); s.Lost != 3 || s.Reloaded != 0 || s.Unloaded != 0 {
		t.Fatalf("stats: lost %d, reloaded %d, unloaded %d; want 3, 0, 0", s.Lost, s.Reloaded, s.Unloaded)
	}
}

// Records whose dead letter failed wait for the next Tick's retry: while
// the dead-letter stream stays unavailable they pile up, and each kept
// its payload. Now a record whose DeadLetter call failed holds none; the
// retry reads it again from the stream, and the dead letter carries it.
func TestDoomedPayloadsNotHeldWhileDeadLetterFails(t *testing.T) {
	const n, size = 100, 1024
	stream := commitlog.NewMemory(1000, 1<<30)
	fillBig(t, stream, n, size)
	clock := newFakeClock()
	dl := &deadLetters{fail: errors.New("dead-letter stream unavailable")}
	g := newGroupT(t, stream, Options{Clock: clock, MaxAttempts: 1, DeadLetter: dl.fn, MaxInFlightBytes: 8 * size})
	m := joinT(t, g, "m", 1000)
	for done := 0; done < n; {
		ds := nextT(t, m, 0)
		for _, d := range ds {
			if err := m.Nack(context.Background(), d.Offset, 0); err != nil { // out of attempts: dead-lettered, which fails
				t.Fatal(err)
			}
		}
		done += len(ds)
	}
	g.Tick(clock.Advance(time.Second)) // fails again
	if held := heldPendingBytes(g); held > 0 {
		t.Fatalf("the group holds %d payload bytes of records whose dead letter failed", held)
	}
	if s := g.Stats(); s.Pending != n || s.PendingBytes != 0 || s.Unloaded != n || s.DeadLetterErrors != 2*n {
		t.Fatalf("stats while the dead letters fail: %+v", s)
	}
	dl.mu.Lock()
	dl.fail = nil
	dl.mu.Unlock()
	g.Tick(clock.Advance(time.Second))
	calls := dl.got()
	if len(calls) != n {
		t.Fatalf("%d dead letters, want %d", len(calls), n)
	}
	for _, c := range calls {
		if c.payload != string(bigPayload(c.off, size)) || c.attempts != 1 {
			t.Fatalf("dead letter of %d: attempts %d, payload %.12q...", c.off, c.attempts, c.payload)
		}
	}
	if s := g.Stats(); s.Pending != 0 || s.Unloaded != 0 || s.DeadLettered != n || s.Reloaded != 2*n { // read again for each retry
		t.Fatalf("stats after the dead letters: %+v", s)
	}
}
