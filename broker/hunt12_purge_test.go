package broker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

// Purges of one stream at the same time (two operators, a retry after a
// lost answer: "purging again is harmless") count each event once:
// PurgeResult.Purged and Stats.Purged (felix_stream_purged_events_total)
// add up to the events the stream held.
func TestHunt12ConcurrentPurgesCountEachEventOnce(t *testing.T) {
	for round := range 10 {
		_, s := newLoggedStream(t, Options{}, openDisk(t, 4096))
		const n = 300
		for i := range n {
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var total uint64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-start
				r, err := s.Purge()
				if err != nil {
					t.Error(err)
					return
				}
				if r.Offset != n {
					t.Errorf("purge point %d, want %d", r.Offset, n)
				}
				mu.Lock()
				total += r.Purged
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if st := s.Stats(); total != n || st.Purged != n {
			t.Fatalf("round %d: purges report %d events removed (stats %d), the stream held %d", round, total, st.Purged, n)
		}
	}
}

// A stream deleted (or the broker closed) while purges run: each purge
// either happened or fails with the stream's end, never a storage error
// or a panic; the log is closed after the purges finished.
func TestHunt12PurgeRacingDelete(t *testing.T) {
	for round := range 20 {
		b, s := newLoggedStream(t, Options{}, openDisk(t, 1024))
		for i := range 100 {
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for range 5 {
					_, err := s.Purge()
					if err != nil && !errors.Is(err, ErrStreamDeleted) && !errors.Is(err, ErrClosed) {
						t.Errorf("round %d: purge racing a delete: %v", round, err)
					}
				}
			})
		}
		if round%2 == 0 {
			if err := b.DeleteStream("t", "ns", "s"); err != nil {
				t.Fatal(err)
			}
		} else {
			b.Close()
		}
		wg.Wait()
	}
}

// After a purge a start by time finds the stream's end (nothing older is
// left), on disk and in memory; a start by offset just below the purge
// point is too old, at it is live.
func TestHunt12StartsAfterPurge(t *testing.T) {
	check := func(t *testing.T, s *Stream, n uint64) {
		r, err := s.Purge()
		if err != nil || r.Offset != n {
			t.Fatalf("purge %+v %v", r, err)
		}
		past := time.Now().Add(-time.Hour)
		sub, err := s.Subscribe(SubscribeOptions{WantOffsets: true, Start: wire.StartAt(past)})
		if err != nil {
			t.Fatalf("start by time: %v", err)
		}
		sub.Close()
		sub, err = s.Subscribe(SubscribeOptions{WantOffsets: true, Start: wire.StartPosition{Kind: wire.StartEarliest}})
		if err != nil {
			t.Fatalf("earliest: %v", err)
		}
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(n)}); err != nil {
			t.Fatal(err)
		}
		if got := readOffsets(t, sub, n+1); len(got) != 1 || got[0] != n {
			t.Fatalf("earliest after the purge got %v", got)
		}
		sub.Close()
		_, err = s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartOffset, Offset: n - 1}})
		var ce *CursorError
		if !errors.As(err, &ce) || !ce.TooOld || ce.Available != n {
			t.Fatalf("offset below the purge point: %v", err)
		}
	}
	t.Run("disk", func(t *testing.T) {
		_, s := newLoggedStream(t, Options{}, openDisk(t, 1024))
		for i := range 50 {
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		check(t, s, 50)
	})
	t.Run("memory", func(t *testing.T) {
		b := New(Options{RingCapacity: 16, AutoCreateStreams: true})
		t.Cleanup(b.Close)
		s, err := b.Stream("t", "ns", "s")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(uint64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		check(t, s, 50)
	})
}
