package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// waitBlocked returns once a publisher holds s.mu (it is blocked on a full
// Block queue) or fails if the publish returned instead.
func waitBlocked(t *testing.T, s *Stream, published <-chan error) {
	t.Helper()
	for s.mu.TryLock() {
		s.mu.Unlock()
		select {
		case err := <-published:
			t.Fatalf("the publish did not block: %v", err)
		default:
			runtime.Gosched()
		}
	}
}

// A publisher blocked by a stalled Block subscriber (its context never
// ends: the server cancels connections only after Broker.Close returns)
// must not keep the stream from being deleted or the broker from closing,
// and while it waits the stream's Err and Tail, other streams and the
// registry must not wait for it. The publish fails with the reason, but
// for the close of a durable stream, whose log already has its events.
func TestBlockedPublisherReleasedByDeleteAndClose(t *testing.T) {
	p := Block
	for _, logged := range []bool{false, true} {
		for _, how := range []string{"delete", "close"} {
			t.Run(fmt.Sprintf("logged=%v/%s", logged, how), func(t *testing.T) {
				var b *Broker
				var s *Stream
				if logged {
					b, s = newLoggedStream(t, Options{QueueCapacity: 1}, commitlog.NewMemory(1<<20, 1<<30))
				} else {
					b, s = newTestStream(t, Options{QueueCapacity: 1})
				}
				other, err := b.DeclareStream("t", "ns", "other")
				if err != nil {
					t.Fatal(err)
				}
				stalled, _ := s.Subscribe(SubscribeOptions{Policy: &p})
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
					t.Fatal(err)
				}
				// The publisher's context never ends while the test runs; it
				// ends at cleanup (before the broker closes) only so that a
				// failing run does not hang.
				pubCtx, cancelPub := context.WithCancel(context.Background())
				t.Cleanup(cancelPub)
				blocked := make(chan error, 1)
				go func() {
					_, err := s.Publish(pubCtx, [][]byte{seqPayload(1), seqPayload(2)})
					blocked <- err
				}()
				waitBlocked(t, s, blocked)

				// Neither Err nor Tail, nor another stream, waits for it.
				quick := make(chan struct{})
				go func() {
					defer close(quick)
					if err := s.Err(); err != nil {
						t.Errorf("Err of a live stream: %v", err)
					}
					if tail := s.Tail(); tail != 3 && tail != 1 {
						t.Errorf("Tail %d", tail)
					}
					if _, err := other.Publish(context.Background(), [][]byte{seqPayload(9)}); err != nil {
						t.Errorf("other stream: %v", err)
					}
				}()
				select {
				case <-quick:
				case <-time.After(10 * time.Second):
					t.Fatal("Err, Tail or another stream waited for the blocked publisher")
				}

				ended := make(chan struct{})
				go func() {
					defer close(ended)
					if how == "delete" {
						if err := b.DeleteStream("t", "ns", "s"); err != nil {
							t.Error(err)
						}
					} else {
						b.Close()
					}
				}()
				select {
				case <-ended:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s waited for a publisher blocked on a stalled subscriber", how)
				}
				want := ErrStreamDeleted
				if how == "close" {
					want = ErrClosed
				}
				if err := <-blocked; logged && how == "close" {
					// Its events are in the durable log: stored, acked
					// (TestDurablePublishStoredBeforeCloseIsAcked).
					if err != nil {
						t.Fatalf("blocked publish to a durable stream returned %v, want an ok", err)
					}
				} else if !errors.Is(err, want) {
					t.Fatalf("blocked publish returned %v, want %v", err, want)
				}
				if err := s.Err(); !errors.Is(err, want) {
					t.Fatalf("Err after %s: %v", how, err)
				}
				// The subscriber gets what was queued, then the end; every
				// published event is either delivered or counted as dropped.
				got := drain(t, stalled)
				checkSeq(t, got, 0, 1)
				if st := stalled.Stats(); st.Delivered+st.Dropped != 3 {
					t.Fatalf("delivered %d + dropped %d != published 3", st.Delivered, st.Dropped)
				}
				if _, _, err := stalled.NextBatch(context.Background(), nil); !errors.Is(err, want) {
					t.Fatalf("subscription after %s: %v", how, err)
				}
			})
		}
	}
}

// NextBatch coalesces frames into one write up to WriteMaxBytes and
// WriteMaxEvents; a frame that would cross either bound goes in the next
// write (a frame larger than the bound alone goes alone, uncopied). No
// frame is lost or repeated at the boundary.
func TestNextBatchRespectsWriteBounds(t *testing.T) {
	_, s := newTestStream(t, Options{WriteMaxBytes: 100, WriteMaxEvents: 5, MaxEventsPerFrame: 3})
	sub, _ := s.Subscribe(SubscribeOptions{})
	pub := func(from, n uint64) {
		var batch [][]byte
		for i := range n {
			batch = append(batch, seqPayload(from+i))
		}
		if _, err := s.Publish(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// frames: 1 event (28 bytes), 3 events (52 bytes), 2 events (40 bytes),
	// 1 event with a 300-byte payload, then 1 event.
	pub(0, 1)
	pub(1, 5)
	big := append(seqPayload(6), make([]byte, 292)...)
	if _, err := s.Publish(context.Background(), [][]byte{big}); err != nil {
		t.Fatal(err)
	}
	pub(7, 1)
	var all []uint64
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, n, err := sub.NextBatch(ctx, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got := decodeFrames(t, b)
		if n != len(got) {
			t.Fatalf("NextBatch said %d events, frames hold %d", n, len(got))
		}
		if n > 5 {
			t.Fatalf("write of %d events, bound 5", n)
		}
		if len(b) > 100 && n != 1 {
			t.Fatalf("write of %d bytes (%d events), bound 100", len(b), n)
		}
		all = append(all, got...)
	}
	for i := range all {
		all[i] &= 0xff
	}
	checkSeq(t, all, 0, 8)
	if st := sub.Stats(); st.Delivered != 8 {
		t.Fatalf("%+v", st)
	}
}

// Auto-creation is bounded: a client cannot grow the registry without
// limit by naming streams at will.
func TestAutoCreateIsBounded(t *testing.T) {
	b := New(Options{AutoCreateStreams: true, MaxAutoCreatedStreams: 10})
	for i := range 10 {
		if _, err := b.Stream("t", "ns", fmt.Sprint("s", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Stream("t", "ns", "one-more"); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("11th auto-created stream: %v", err)
	}
	if _, err := b.Stream("t", "other", "x"); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("11th auto-created stream in a new namespace: %v", err)
	}
	// Existing streams are still found; declared streams are not limited.
	if _, err := b.Stream("t", "ns", "s3"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeclareStream("t", "ns", "declared"); err != nil {
		t.Fatal(err)
	}
	// Deleting frees room.
	if err := b.DeleteStream("t", "ns", "s0"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteStream("t", "ns", "declared"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stream("t", "ns", "one-more"); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	// The default is a limit too.
	if New(Options{}).Options().MaxAutoCreatedStreams <= 0 {
		t.Fatal("no default limit on auto-created streams")
	}
}

// closeOnReadLog deletes its stream just before a catch-up read, as a
// control-plane delete racing a replaying subscriber would.
type closeOnReadLog struct {
	commitlog.Log
	onRead func()
}

func (l *closeOnReadLog) Read(from uint64, maxRecords, maxBytes int) ([]commitlog.Record, error) {
	if f := l.onRead; f != nil {
		l.onRead = nil
		f()
	}
	return l.Log.Read(from, maxRecords, maxBytes)
}

// A subscription replaying a log-backed stream that is deleted mid-read
// ends as any subscription of a deleted stream does (ErrSubscriptionEnded
// with the reason), not with a storage error.
func TestCatchUpEndsCleanlyWhenStreamDeleted(t *testing.T) {
	lg := &closeOnReadLog{Log: commitlog.NewMemory(1<<20, 1<<30)}
	b, s := newLoggedStream(t, Options{}, lg)
	for i := range uint64(10) {
		s.Publish(context.Background(), [][]byte{seqPayload(i)})
	}
	sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	lg.onRead = func() { b.DeleteStream("t", "ns", "s") }
	_, _, err = sub.NextBatch(context.Background(), nil)
	if !errors.Is(err, ErrSubscriptionEnded) || !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("replay of a deleted stream: %v", err)
	}
}
