package broker

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"

	"github.com/felixmq/felix/wire"
)

// hunt14Sink records the frames a publisher writes straight to it.
type hunt14Sink struct {
	mu     sync.Mutex
	frames [][]byte
}

func (s *hunt14Sink) TryWrite(frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames = append(s.frames, frame)
	return true
}

// A subscription that replays an in-memory stream's ring must not copy the
// ring: each used to encode its whole replay (up to --replay-ring-bytes,
// 64 MiB by default) into frames of its own when it subscribed, held until
// written, outside the queue's byte bound, so a client subscribing many
// times from the earliest event (or many resuming at once) made the
// broker allocate subscriptions × ring bytes. The replay is encoded a
// frame at a time as it is written, from the ring's shared payloads.
func TestHunt14ReplayDoesNotCopyTheRing(t *testing.T) {
	const events, size, subs = 8, 512 << 10, 16
	_, s := newTestStream(t, Options{RingCapacity: events, RingMaxBytes: events * size, MaxEventsPerFrame: 1})
	for i := range uint64(events) {
		p := make([]byte, size)
		binary.BigEndian.PutUint64(p, i)
		if _, err := s.Publish(context.Background(), [][]byte{p}); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	all := make([]*Subscription, 0, subs)
	for range subs {
		sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sub)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n >= events*size {
		t.Errorf("%d subscriptions from the earliest event allocated %d bytes, a ring holds %d", subs, n, events*size)
	}

	// Each still gets the replay, then live events, in order, whether it
	// is read as the server does (a sink for live frames, then NextBatch)
	// or by NextBatch alone; a live event published during the replay
	// waits for it.
	sink := &hunt14Sink{}
	all[0].SetSink(sink)
	live := make([]byte, size)
	binary.BigEndian.PutUint64(live, events)
	if _, err := s.Publish(context.Background(), [][]byte{live}); err != nil {
		t.Fatal(err)
	}
	read := func(sub *Subscription, got []uint64) []uint64 {
		for len(got) < events+1 {
			b, _, err := sub.NextBatch(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, decodeFrames(t, b)...)
		}
		return got
	}
	var got []uint64
	for _, f := range sink.frames {
		got = append(got, decodeFrames(t, f)...)
	}
	checkSeq(t, read(all[0], got), 0, events+1)
	checkSeq(t, read(all[1], nil), 0, events+1)
	for i, sub := range all[:2] {
		if st := sub.Stats(); st.Delivered != events+1 || st.Dropped != 0 {
			t.Errorf("subscription %d: %+v, want %d delivered, none dropped", i, st, events+1)
		}
	}
	for _, sub := range all {
		sub.Close()
	}
}
