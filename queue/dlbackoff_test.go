package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// While the dead-letter stream refuses every dead letter, Tick retried
// each waiting record at every tick: 10 records ticked every 100 ms for
// 10 s made 1,000 calls against a stream that was down. Rounds that all
// fail now put the next one off, 1 s doubling to 30 s; the first
// success ends the backoff.
func TestDeadLetterRetriesBackOff(t *testing.T) {
	const n = 10
	stream := commitlog.NewMemory(1000, 1<<30)
	fill(t, stream, n)
	clock := newFakeClock()
	dl := &deadLetters{fail: errors.New("dead-letter stream unavailable")}
	g := newGroupT(t, stream, Options{Clock: clock, MaxAttempts: 1, DeadLetter: dl.fn})
	m := joinT(t, g, "m", n)
	for _, d := range nextT(t, m, 0) {
		if err := m.Nack(context.Background(), d.Offset, 0); err != nil { // out of attempts: its dead letter fails
			t.Fatal(err)
		}
	}
	if s := g.Stats(); s.DeadLetterErrors != n {
		t.Fatalf("after the nacks: %d dead-letter errors, want %d", s.DeadLetterErrors, n)
	}
	// Ticks every 100 ms for 10 s: rounds at 0.1 s, then 1 s, 2 s, 4 s
	// and 8 s after each failed one (at 1.1, 3.1, 7.1 s).
	for range 100 {
		g.Tick(clock.Advance(100 * time.Millisecond))
	}
	if got, want := g.Stats().DeadLetterErrors, uint64(n+4*n); got != want {
		t.Fatalf("after 10 s of ticks: %d dead-letter errors, want %d (4 rounds)", got, want)
	}
	// The stream is back: the next round (8 s after the last, at 15.1 s)
	// dead-letters them all.
	dl.mu.Lock()
	dl.fail = nil
	dl.mu.Unlock()
	for range 51 {
		g.Tick(clock.Advance(100 * time.Millisecond))
	}
	if s := g.Stats(); s.DeadLettered != n || s.Pending != 0 {
		t.Fatalf("after the stream came back: %+v", s)
	}
	g.mu.Lock()
	backoff := g.deadLetterBackoff
	g.mu.Unlock()
	if backoff != 0 {
		t.Fatalf("backoff %v after a success, want none", backoff)
	}
}
