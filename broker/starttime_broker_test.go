package broker

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/wire"
)

// stepClock is an injected clock set by the test.
type stepClock = testclock.Clock

var startTimeBase = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func startAtMs(ms int64) wire.StartPosition {
	return wire.StartAt(startTimeBase.Add(time.Duration(ms) * time.Millisecond))
}

// publishAt publishes events [from, from+n) (seqPayload) stamped at ms.
func publishAt(t *testing.T, s *Stream, clock *stepClock, ms int64, from, n uint64) {
	t.Helper()
	clock.Set(startTimeBase.Add(time.Duration(ms) * time.Millisecond))
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = seqPayload(from + uint64(i))
	}
	if _, err := s.Publish(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
}

// Batches of 3 events at ms 0, 10, 20, 30 on an in-memory stream and on
// a durable one of several segments: a start by time replays from the
// first event at or after it, then goes on live.
func TestSubscribeFromTime(t *testing.T) {
	cases := []struct {
		ms   int64
		from uint64
	}{
		{-86_400_000, 0}, // before the oldest: the oldest
		{0, 0}, {1, 3}, {10, 3}, {15, 6}, {20, 6}, {29, 9}, {30, 9},
		{31, 12}, {3_600_000, 12}, // after the newest: the tail
	}
	kinds := map[string]func(t *testing.T, clock *stepClock) *Stream{
		"memory": func(t *testing.T, clock *stepClock) *Stream {
			_, s := newTestStream(t, Options{Clock: clock.Now})
			return s
		},
		"durable": func(t *testing.T, clock *stepClock) *Stream {
			lg, err := commitlog.Open(t.TempDir(), commitlog.Options{SegmentBytes: 128, Clock: clock.Now, RetentionInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			_, s := newLoggedStream(t, Options{}, lg)
			return s
		},
	}
	for name, mk := range kinds {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases {
				clock := &stepClock{}
				s := mk(t, clock)
				for i := range int64(4) {
					publishAt(t, s, clock, i*10, uint64(i)*3, 3)
				}
				if lg, ok := s.Log().(*commitlog.DiskLog); ok && lg.Stats().Segments < 3 {
					t.Fatalf("%d segments", lg.Stats().Segments)
				}
				sub, err := s.Subscribe(SubscribeOptions{Start: startAtMs(c.ms), WantOffsets: true})
				if err != nil {
					t.Fatalf("ms %d: %v", c.ms, err)
				}
				publishAt(t, s, clock, 40, 12, 1) // live after the replay
				checkSeq(t, drainN(t, sub, int(13-c.from)), c.from, 13-c.from)
				sub.Close()
			}
		})
	}
}

// A ring that dropped its oldest events starts a time before them at the
// oldest it kept, never refusing it as too old; without a ring a start by
// time is at the tail.
func TestSubscribeFromTimeRingBounds(t *testing.T) {
	clock := &stepClock{}
	_, s := newTestStream(t, Options{Clock: clock.Now, RingCapacity: 4})
	for i := range int64(10) {
		publishAt(t, s, clock, i*10, uint64(i), 1)
	}
	sub, err := s.Subscribe(SubscribeOptions{Start: startAtMs(0), WantOffsets: true})
	if err != nil {
		t.Fatal(err)
	}
	// The replay is read before the live event evicts its first event
	// from the ring (a replay skips what the ring evicts).
	checkSeq(t, drainN(t, sub, 4), 6, 4)
	publishAt(t, s, clock, 100, 10, 1)
	checkSeq(t, drainN(t, sub, 1), 10, 1)

	_, none := newTestStream(t, Options{Clock: clock.Now, RingCapacity: -1})
	publishAt(t, none, clock, 0, 0, 3)
	sub, err = none.Subscribe(SubscribeOptions{Start: startAtMs(-1000), WantOffsets: true})
	if err != nil {
		t.Fatal(err)
	}
	publishAt(t, none, clock, 10, 3, 1)
	checkSeq(t, drainN(t, sub, 1), 3, 1)
}

// The largest time_ms (beyond what unix microseconds hold) is the tail.
func TestSubscribeFromTimeFarFuture(t *testing.T) {
	clock := &stepClock{}
	_, s := newTestStream(t, Options{Clock: clock.Now})
	publishAt(t, s, clock, 0, 0, 2)
	sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartTime, TimeMs: ^uint64(0)}, WantOffsets: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := sub.replayEnd - sub.replayNext; n != 0 {
		t.Fatalf("a replay of %d events", n)
	}
}
