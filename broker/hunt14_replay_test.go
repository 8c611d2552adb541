package broker

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

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
	// Room for the live event too: the replays then lose nothing to
	// eviction (see TestHunt14SlowReplaysDoNotPinOldRings).
	_, s := newTestStream(t, Options{RingCapacity: events + 1, RingMaxBytes: (events + 1) * size, MaxEventsPerFrame: 1})
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

// Slow replays must not keep the ring's old events alive. Each used to
// hold the ring's payloads as they were when it subscribed, so replays
// that started one ring apart and were not read (a consumer stalled by
// flow control) each pinned a whole generation: subscriptions × ring
// bytes, with up to --max-subscriptions-per-conn subscriptions a
// connection. A replay now reads the ring as it is written: what the ring
// has evicted is skipped and counted as dropped (as when retention
// overtakes a log replay), so the memory held stays the ring's bound plus
// each subscription's own queue.
func TestHunt14SlowReplaysDoNotPinOldRings(t *testing.T) {
	const events, size, gens = 8, 512 << 10, 16
	ringBytes := events * size
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Each subscription's queue keeps one live frame (a frame is queued
	// alone whatever the byte bound), the rest are dropped.
	_, s := newTestStream(t, Options{RingCapacity: events, RingMaxBytes: ringBytes, MaxEventsPerFrame: 1, QueueMaxBytes: 1})
	subs := make([]*Subscription, 0, gens)
	for g := range uint64(gens) {
		for i := range uint64(events) {
			p := make([]byte, size)
			binary.BigEndian.PutUint64(p, g*events+i)
			if _, err := s.Publish(context.Background(), [][]byte{p}); err != nil {
				t.Fatal(err)
			}
		}
		sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true, Start: wire.StartPosition{Kind: wire.StartEarliest}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if limit := int64(2*ringBytes + gens*size); live > limit {
		t.Errorf("%d unread replays, each started one ring (%d bytes) after the last, hold %d bytes of heap; want at most %d (the ring, one queued frame each, slack)",
			gens, ringBytes, live, limit)
	}

	// Subscription g replayed [g*events, (g+1)*events): all but the last
	// were overtaken, so they skip their replay and get their one queued
	// live frame; the last gets its whole replay.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for g, sub := range subs[:gens-1] {
		b, _, err := sub.NextBatch(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		offs, _ := offsetsOf(t, b)
		if want := uint64(g+1) * events; len(offs) != 1 || offs[0] != want {
			t.Fatalf("subscription %d (replay overtaken) got offsets %v first, want [%d]", g, offs, want)
		}
		if st := sub.Stats(); st.Delivered+st.Dropped != uint64(gens-g)*events {
			t.Fatalf("subscription %d: %d delivered + %d dropped, want %d", g, st.Delivered, st.Dropped, uint64(gens-g)*events)
		}
	}
	last := subs[gens-1]
	got := readOffsets(t, last, gens*events)
	if len(got) != events || got[0] != (gens-1)*events {
		t.Fatalf("the last subscription replayed %v, want the ring [%d, %d)", got, (gens-1)*events, gens*events)
	}
	runtime.KeepAlive(subs)
}
