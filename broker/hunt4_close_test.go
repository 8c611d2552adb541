package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// newBlockTestStream returns an in-memory or a log-backed stream whose
// subscriber queues hold one frame.
func newBlockTestStream(t *testing.T, logged bool) *Stream {
	_, s := newStreamOf(t, logged, Options{QueueCapacity: 1})
	return s
}

// publishBlocked publishes payloads in a goroutine and returns once the
// publish is blocked on a full Block queue, with the channel its result
// arrives on. Its context ends only at cleanup (so that a failing run does
// not hang); it is returned for other waits of the test.
func publishBlocked(t *testing.T, s *Stream, payloads ...[]byte) (<-chan error, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Publish(ctx, payloads)
		blocked <- err
	}()
	waitBlocked(t, s, blocked)
	return blocked, ctx
}

// waitDone fails the test if done is not closed within a generous bound
// (a hang, not a timing: the operation must not wait for the publisher).
func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s waited for a publisher blocked on another subscriber", what)
	}
}

// While a publish waits for a full Block queue, closing ANOTHER
// subscription of the stream (live, or still catching up on a log-backed
// stream) returns at once; the blocked publish then still resumes when the
// slow subscriber reads, with nothing lost, duplicated or reordered, and
// the closed subscription's counts stay in the stream's totals.
func TestCloseOtherSubscriptionDuringBlockedPublish(t *testing.T) {
	p := Block
	for _, logged := range []bool{false, true} {
		for _, otherPolicy := range []QueuePolicy{DropNew, Block} {
			t.Run(fmt.Sprintf("logged=%v/other=%v", logged, otherPolicy), func(t *testing.T) {
				s := newBlockTestStream(t, logged)
				slow, _ := s.Subscribe(SubscribeOptions{Policy: &p, WantOffsets: true})
				op := otherPolicy
				other, _ := s.Subscribe(SubscribeOptions{Policy: &op, QueueCapacity: 64, WantOffsets: true})
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
					t.Fatal(err)
				}
				var catching *Subscription
				if logged { // a subscription still replaying the log
					catching, _ = s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
				}
				blocked, _ := publishBlocked(t, s, seqPayload(1), seqPayload(2))

				before := s.SubTotals()
				closed := make(chan struct{})
				go func() {
					defer close(closed)
					other.Close()
					if catching != nil {
						catching.Close()
					}
				}()
				waitDone(t, closed, "Close of another subscription")
				if st := s.Stats(); len(st.Subscriptions) != 1 || st.Subscriptions[0].ID != slow.ID() {
					t.Fatalf("live subscriptions after Close: %+v", st.Subscriptions)
				}
				after := s.SubTotals()
				if after.Subscriptions != 1 || after.Enqueued < before.Enqueued || after.Dropped < before.Dropped {
					t.Fatalf("totals went back: before %+v after %+v", before, after)
				}
				// The slow subscriber reads: the publish resumes, lossless.
				got := drainN(t, slow, 3)
				if err := <-blocked; err != nil {
					t.Fatalf("resumed publish: %v", err)
				}
				checkSeq(t, got, 0, 3)
				if st := slow.Stats(); st.Dropped != 0 {
					t.Fatalf("slow subscriber dropped: %+v", st)
				}
				// Later publishes reach the slow subscriber alone.
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(3)}); err != nil {
					t.Fatal(err)
				}
				checkSeq(t, drainN(t, slow, 1), 3, 1)
				if n := len(other.q); n > 1 {
					t.Fatalf("the closed subscription got %d frames after Close", n)
				}
			})
		}
	}
}

// Closing the slow subscriber itself releases the blocked publish at once
// (no drop is counted for a subscriber that went away), and a publish
// waiting behind it then goes through.
func TestCloseSlowSubscriptionReleasesBlockedPublish(t *testing.T) {
	p := Block
	for _, logged := range []bool{false, true} {
		t.Run(fmt.Sprintf("logged=%v", logged), func(t *testing.T) {
			s := newBlockTestStream(t, logged)
			slow, _ := s.Subscribe(SubscribeOptions{Policy: &p})
			fast, _ := s.Subscribe(SubscribeOptions{QueueCapacity: 64})
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
				t.Fatal(err)
			}
			blocked, _ := publishBlocked(t, s, seqPayload(1))
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				slow.Close()
			}()
			waitDone(t, closed, "Close of the slow subscription")
			select {
			case err := <-blocked:
				if err != nil {
					t.Fatalf("released publish: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("closing the slow subscriber did not release the publish")
			}
			if st := slow.Stats(); st.Dropped != 0 {
				t.Fatalf("drops counted for a closed subscriber: %+v", st)
			}
			if _, err := s.Publish(context.Background(), [][]byte{seqPayload(2)}); err != nil {
				t.Fatal(err)
			}
			checkSeq(t, drainN(t, fast, 3), 0, 3)
		})
	}
}

// A Subscribe made while a publish waits for a full Block queue waits for
// that publish (see docs/semantics.md: its start must be ordered against
// the publish in progress); it then starts exactly at the boundary: replay
// from earliest sees every event once, in order, then live events follow
// with no gap and no duplicate.
func TestSubscribeDuringBlockedPublishNoGapNoDup(t *testing.T) {
	p := Block
	for _, logged := range []bool{false, true} {
		for _, start := range []wire.StartKind{wire.StartEarliest, wire.StartLatest} {
			t.Run(fmt.Sprintf("logged=%v/start=%v", logged, start), func(t *testing.T) {
				s := newBlockTestStream(t, logged)
				slow, _ := s.Subscribe(SubscribeOptions{Policy: &p})
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
					t.Fatal(err)
				}
				blocked, _ := publishBlocked(t, s, seqPayload(1), seqPayload(2))
				subscribed := make(chan *Subscription, 1)
				go func() {
					sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: start}, QueueCapacity: 64})
					if err != nil {
						t.Error(err)
					}
					subscribed <- sub
				}()
				checkSeq(t, drainN(t, slow, 3), 0, 3)
				if err := <-blocked; err != nil {
					t.Fatal(err)
				}
				sub := <-subscribed
				if sub == nil {
					t.FailNow()
				}
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(3)}); err != nil {
					t.Fatal(err)
				}
				checkSeq(t, drainN(t, slow, 1), 3, 1)
				var got []uint64
				from := uint64(0)
				if start == wire.StartLatest {
					from = 3
				}
				got = append(got, drainN(t, sub, int(4-from)-len(got))...)
				checkSeq(t, got, from, 4-from)
			})
		}
	}
}

// decodeFramesQuiet is decodeFrames for goroutines other than the test's:
// a frame that does not decode ends the list (the caller checks the
// sequence).
func decodeFramesQuiet(b []byte) []uint64 {
	var out []uint64
	var eb wire.BinaryEventBatch
	for len(b) > 0 {
		f, rest, err := wire.DecodeFrame(b, 0)
		if err != nil || wire.DecodeEventBatch(f.Flags, f.Payload, &eb) != nil {
			return out
		}
		for _, p := range eb.Payloads {
			out = append(out, binary.BigEndian.Uint64(p))
		}
		b = rest
	}
	return out
}

// A durable subscription made before a publish blocked on a full Block
// queue reads the history below the fanned-out position while the publish
// waits (reading the log does not need the stream lock); it joins live
// delivery after the publish, with no gap and no duplicate.
func TestCatchUpReadsHistoryDuringBlockedPublish(t *testing.T) {
	p := Block
	_, s := newLoggedStream(t, Options{QueueCapacity: 1, MaxEventsPerFrame: 2}, commitlog.NewMemory(1<<20, 1<<30))
	for i := range uint64(6) {
		if _, err := s.Publish(context.Background(), [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	catching, _ := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	slow, _ := s.Subscribe(SubscribeOptions{Policy: &p})
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(6)}); err != nil {
		t.Fatal(err)
	}
	blocked, pubCtx := publishBlocked(t, s, seqPayload(7), seqPayload(8))
	history := make(chan []uint64, 1)
	go func() {
		var got []uint64
		for len(got) < 7 {
			b, _, err := catching.NextBatch(pubCtx, nil)
			if err != nil {
				break
			}
			got = append(got, decodeFramesQuiet(b)...)
		}
		history <- got
	}()
	select {
	case got := <-history:
		checkSeq(t, got, 0, 7)
	case <-time.After(10 * time.Second):
		t.Fatal("catch-up waited for a publisher blocked on another subscriber")
	}
	checkSeq(t, drainN(t, slow, 3), 6, 3)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(9)}); err != nil {
		t.Fatal(err)
	}
	checkSeq(t, drainN(t, catching, 3), 7, 3)
}

func errorsIsEnded(err error) bool { return errors.Is(err, ErrSubscriptionEnded) }
