package broker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/fulldisk"
	"github.com/felixmq/felix/wire"
)

// readOffsets reads frames of sub (with offsets) until it has an event
// at end-1 or later, returning each event's offset.
func readOffsets(t *testing.T, sub *Subscription, end uint64) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []uint64
	for len(out) == 0 || out[len(out)-1]+1 < end {
		b, _, err := sub.NextBatch(ctx, nil)
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		offs, _ := offsetsOf(t, b)
		out = append(out, offs...)
	}
	return out
}

func openDisk(t *testing.T, segmentBytes int64) *commitlog.DiskLog {
	t.Helper()
	lg, err := commitlog.Open(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, SegmentBytes: segmentBytes})
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

// Purges racing publishers on a durable stream never disturb live
// delivery: a live subscription gets every event, contiguous and in
// order; afterwards the stream keeps exactly what followed the last purge.
func TestPurgeRacingPublishersKeepsLiveDelivery(t *testing.T) {
	_, s := newLoggedStream(t, Options{QueueCapacity: 1 << 16}, openDisk(t, 4096))
	sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(w*each + i))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var purged uint64
	last := PurgeResult{}
	wg.Go(func() {
		for range 20 {
			r, err := s.Purge()
			if err != nil {
				t.Error(err)
				return
			}
			if r.Offset < last.Offset {
				t.Errorf("purge point went back: %d after %d", r.Offset, last.Offset)
			}
			purged += r.Purged
			last = r
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	got := readOffsets(t, sub, writers*each)
	for i, off := range got {
		if off != uint64(i) {
			t.Fatalf("live event %d has offset %d", i, off)
		}
	}
	lg := s.Log()
	if lg.Oldest() < last.Offset || lg.Next() != writers*each {
		t.Fatalf("log [%d, %d) after purges up to %d", lg.Oldest(), lg.Next(), last.Offset)
	}
	if st := s.Stats(); st.Purged != purged || purged+(lg.Next()-lg.Oldest()) != writers*each {
		t.Fatalf("purged %d (stats %d) + kept %d != published %d", purged, st.Purged, lg.Next()-lg.Oldest(), writers*each)
	}
}

// A subscription replaying the log when the purge comes skips to the
// purge point, counting the skipped events as dropped, then goes on live.
func TestPurgeOvertakesCatchUp(t *testing.T) {
	_, s := newLoggedStream(t, Options{QueueCapacity: 1 << 16, MaxEventsPerFrame: 10}, openDisk(t, 1024))
	sub := replayFromEarliest(t, s, 500)
	first := readOffsets(t, sub, 1)
	if first[0] != 0 || len(first) > 10 {
		t.Fatalf("first replay frame %v", first)
	}
	if r, err := s.Purge(); err != nil || r != (PurgeResult{Purged: 500, Offset: 500}) {
		t.Fatalf("purge: %+v, %v", r, err)
	}
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(500)}); err != nil {
		t.Fatal(err)
	}
	rest := readOffsets(t, sub, 501)
	// Frames already read ahead of the purge may still come (the log's
	// reads in flight finish), then the purge point.
	if rest[len(rest)-1] != 500 || (len(rest) > 1 && rest[len(rest)-2] >= 500) {
		t.Fatalf("after the purge the subscription got %v", rest)
	}
	if st := sub.Stats(); uint64(len(first)+len(rest))+st.Dropped != 501 {
		t.Fatalf("delivered %d + dropped %d != 501", len(first)+len(rest), st.Dropped)
	}
}

// An in-memory stream's purge empties its ring and frees its slots; it
// refills as before.
func TestPurgeInMemoryRing(t *testing.T) {
	b := New(Options{RingCapacity: 100})
	t.Cleanup(b.Close)
	s, err := b.DeclareStream("t", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Purge()
	if err != nil || r != (PurgeResult{Purged: 100, Offset: 150}) {
		t.Fatalf("purge: %+v, %v; want the ring's 100 events, offset 150", r, err)
	}
	if s.ring.buf != nil || s.ring.n != 0 || s.ring.bytes != 0 || s.Stats().Oldest != 150 {
		t.Fatalf("ring after the purge: %d slots, %d events, %d bytes, oldest %d", len(s.ring.buf), s.ring.n, s.ring.bytes, s.Stats().Oldest)
	}
	for i := range 3 {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(150 + i))}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true, Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readOffsets(t, sub, 153); len(got) != 3 || got[0] != 150 {
		t.Fatalf("earliest after the purge: %v", got)
	}
	b.Close()
	if _, err := s.Purge(); err == nil {
		t.Fatal("purge of a closed stream succeeded")
	}
}

// A purge of an in-memory stream cuts a replay of its ring in progress:
// no event below the purge point is handed to the consumer once Purge has
// returned (the frame it already took may have gone); the skipped events
// count as dropped, and the subscription goes on live.
func TestPurgeInMemoryCutsReplay(t *testing.T) {
	_, s := newTestStream(t, Options{RingCapacity: 100, MaxEventsPerFrame: 10})
	sub := replayFromEarliest(t, s, 100)
	first := readOffsets(t, sub, 1)
	if first[0] != 0 || len(first) != 10 {
		t.Fatalf("first replay frame %v", first)
	}
	if r, err := s.Purge(); err != nil || r != (PurgeResult{Purged: 100, Offset: 100}) {
		t.Fatalf("purge: %+v, %v", r, err)
	}
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(100)}); err != nil {
		t.Fatal(err)
	}
	if rest := readOffsets(t, sub, 101); len(rest) != 1 || rest[0] != 100 {
		t.Fatalf("after the purge (point 100) the replaying subscription got offsets %v, want only 100", rest)
	}
	if st := sub.Stats(); st.Delivered != 11 || st.Dropped != 90 {
		t.Fatalf("stats %+v, want 11 delivered, the 90 purged events dropped", st)
	}
}

// A purge the log cannot do (a full disk with no segment to delete for
// room) fails with ErrStorage saying the purge was not done, naming the
// stream and the OS reason, not a publish or a server path; the stream
// keeps its events and a purge once there is room removes them.
func TestPurgeStorageErrorSaysPurge(t *testing.T) {
	lg := fulldisk.New(commitlog.NewMemory(1<<20, 1<<30))
	_, s := newLoggedStream(t, Options{}, lg)
	ctx := context.Background()
	for i := range uint64(3) {
		if _, err := s.Publish(ctx, [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	lg.Full.Store(true)
	_, err := s.Purge()
	if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("purge on a full disk: %v, want ErrStorage wrapping ENOSPC", err)
	}
	for _, want := range []string{"purge not done", "t/ns/s", "no space left on device"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "publish") || strings.Contains(err.Error(), "/data/") {
		t.Fatalf("error %q speaks of a publish or shows a server path", err)
	}
	if got := s.Stats().Purged; got != 0 {
		t.Fatalf("purged %d after a purge that removed nothing", got)
	}
	lg.Full.Store(false)
	if res, err := s.Purge(); err != nil || res.Purged != 3 || res.Offset != 3 {
		t.Fatalf("purge once there is room = %+v, %v; want 3 purged, offset 3", res, err)
	}
}

// replayFromEarliest publishes events 0..n-1 to s, one a call, and
// subscribes from the earliest, with offsets.
func replayFromEarliest(t *testing.T, s *Stream, n int) *Subscription {
	t.Helper()
	for i := range n {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true, Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}
