package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// The byte bound of a subscription's queue (QueueMaxBytes): large events,
// each in a frame of its own, fill it long before the frame bound
// (QueueCapacity, 512 by default here) is reached.

const (
	bigEvent      = 40 << 10  // one event per frame (two exceed MaxBytesPerFrame, 64 KiB)
	queueMaxBytes = 200 << 10 // four such frames fit, five do not
)

// bigPayload is an event of size bytes whose first 8 carry seq (decodeFrames reads them).
func bigPayload(seq uint64, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, seq)
	return p
}

// newStreamOf returns an in-memory or a log-backed stream, closed at cleanup.
func newStreamOf(t *testing.T, logged bool, o Options) (*Broker, *Stream) {
	t.Helper()
	if logged {
		return newLoggedStream(t, o, commitlog.NewMemory(1<<20, 1<<30))
	}
	b, s := newTestStream(t, o)
	t.Cleanup(b.Close)
	return b, s
}

// queued returns the subscription's reserved frames and bytes.
func queued(sub *Subscription) (frames, bytes int) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.pending, sub.bytes
}

// drainNow returns the events of every frame queued for sub without
// waiting, releasing them all: the counters must then be back to zero
// (the invariant every test of this file ends with).
func drainNow(t *testing.T, sub *Subscription) []uint64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // NextBatch still returns what is queued, then ctx.Err()
	var got []uint64
	for {
		b, _, err := sub.NextBatch(ctx, nil)
		if err != nil {
			break
		}
		got = append(got, decodeFrames(t, b)...)
	}
	if frames, bytes := queued(sub); frames != 0 || bytes != 0 {
		t.Fatalf("drained queue still counts %d frames, %d bytes", frames, bytes)
	}
	if st := sub.Stats(); st.QueueBytes != 0 || st.QueueLen != 0 {
		t.Fatalf("drained queue: stats %+v", st)
	}
	return got
}

// checkBound fails if sub holds more than its byte bound (one frame alone
// may be larger).
func checkBound(t *testing.T, sub *Subscription) {
	t.Helper()
	frames, bytes := queued(sub)
	if bytes > sub.maxBytes && frames > 1 {
		t.Fatalf("queue holds %d bytes in %d frames, bound %d", bytes, frames, sub.maxBytes)
	}
}

// A subscriber that does not read, under each policy: the queue never
// holds more than QueueMaxBytes although the frame bound is far away;
// drop_new keeps the oldest, drop_old the newest, each drop counted
// exactly (delivered + dropped == published); block holds the publisher
// until the consumer reads, then delivers everything and drops nothing.
// The per-subscription override wins over the broker's default.
func TestQueueBytesBoundEachPolicy(t *testing.T) {
	const n = 20
	for _, logged := range []bool{false, true} {
		for _, p := range []QueuePolicy{DropNew, DropOld, Block} {
			t.Run(fmt.Sprintf("logged=%v/%v", logged, p), func(t *testing.T) {
				_, s := newStreamOf(t, logged, Options{})
				pp := p
				sub, err := s.Subscribe(SubscribeOptions{Policy: &pp, QueueMaxBytes: queueMaxBytes})
				if err != nil {
					t.Fatal(err)
				}
				if st := sub.Stats(); st.QueueMaxBytes != queueMaxBytes || st.QueueCap != 512 {
					t.Fatalf("stats %+v", st)
				}
				ctx := context.Background()
				if _, err := s.Publish(ctx, [][]byte{bigPayload(0, bigEvent)}); err != nil {
					t.Fatal(err)
				}
				frame := sub.Stats().QueueBytes
				if frame <= bigEvent || frame > bigEvent+64 {
					t.Fatalf("one event's frame counts %d bytes", frame)
				}
				fit := queueMaxBytes / frame
				if fit != 4 {
					t.Fatalf("%d frames fit, the test wants 4", fit)
				}
				if p == Block {
					checkBlockReleasedByReader(t, s, sub, fit, n)
					return
				}
				for i := uint64(1); i < n; i++ {
					if _, err := s.Publish(ctx, [][]byte{bigPayload(i, bigEvent)}); err != nil {
						t.Fatal(err)
					}
					checkBound(t, sub)
					if st := sub.Stats(); st.QueueLen > fit || st.QueueBytes > queueMaxBytes {
						t.Fatalf("after event %d: stats %+v", i, st)
					}
				}
				st := sub.Stats()
				if st.Dropped != n-uint64(fit) || st.QueueLen != fit || st.QueueBytes != fit*frame {
					t.Fatalf("stats %+v, want %d dropped, %d frames queued", st, n-fit, fit)
				}
				got := drainNow(t, sub)
				if p == DropNew {
					checkSeq(t, got, 0, uint64(fit))
				} else {
					checkSeq(t, got, n-uint64(fit), uint64(fit))
				}
				if st := sub.Stats(); st.Delivered+st.Dropped != n {
					t.Fatalf("delivered %d + dropped %d != published %d", st.Delivered, st.Dropped, n)
				}
			})
		}
	}
}

// checkBlockReleasedByReader: with the first event queued, the next
// fit-1 fill the byte bound, and the one after makes the publisher wait
// for bytes (not slots) until the consumer reads; then all n arrive in
// order, none dropped, and the bound holds throughout.
func checkBlockReleasedByReader(t *testing.T, s *Stream, sub *Subscription, fit, n int) {
	t.Helper()
	published := make(chan error, 1)
	go func() {
		for i := uint64(1); i < uint64(n); i++ {
			if _, err := s.Publish(context.Background(), [][]byte{bigPayload(i, bigEvent)}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	waitGoroutineIn(t, published, "(*Subscription).makeRoom")
	if st := sub.Stats(); st.QueueLen != fit || st.Dropped != 0 || st.QueueBytes > queueMaxBytes {
		t.Fatalf("blocked publisher: stats %+v, want %d frames queued", st, fit)
	}
	var got []uint64
	for len(got) < n {
		b, _, err := sub.NextBatch(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, decodeFrames(t, b)...)
		checkBound(t, sub)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	checkSeq(t, got, 0, uint64(n))
	if rest := drainNow(t, sub); len(rest) != 0 {
		t.Fatalf("%d events more than published", len(rest))
	}
	if st := sub.Stats(); st.Dropped != 0 || st.Delivered != uint64(n) {
		t.Fatalf("stats %+v", st)
	}
}

// A publisher waiting for bytes on a block queue gives up as one waiting
// for a slot does: its context's end fails the publish and counts the
// frame as dropped; the subscription's Close releases it without error;
// the stream's deletion fails it with that reason, counted.
func TestQueueBytesBlockWaitEnds(t *testing.T) {
	for _, how := range []string{"ctx", "close", "delete"} {
		t.Run(how, func(t *testing.T) {
			b, s := newTestStream(t, Options{QueueMaxBytes: queueMaxBytes, QueuePolicy: Block})
			t.Cleanup(b.Close)
			sub, _ := s.Subscribe(SubscribeOptions{})
			ctx := context.Background()
			for i := range uint64(4) {
				if _, err := s.Publish(ctx, [][]byte{bigPayload(i, bigEvent)}); err != nil {
					t.Fatal(err)
				}
			}
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			published := make(chan error, 1)
			go func() {
				_, err := s.Publish(pctx, [][]byte{bigPayload(4, bigEvent)})
				published <- err
			}()
			waitGoroutineIn(t, published, "(*Subscription).makeRoom")
			var want error
			var dropped uint64
			switch how {
			case "ctx":
				cancel()
				want, dropped = context.Canceled, 1
			case "close":
				sub.Close()
			case "delete":
				if err := b.DeleteStream("t", "ns", "s"); err != nil {
					t.Fatal(err)
				}
				want, dropped = ErrStreamDeleted, 1
			}
			err := <-published
			if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
				t.Fatalf("publish: %v, want %v", err, want)
			}
			if st := sub.Stats(); st.Dropped != dropped {
				t.Fatalf("stats %+v, want %d dropped", st, dropped)
			}
			if how == "close" {
				return // Close discards the queue: nothing to drain
			}
			checkSeq(t, drainNow(t, sub), 0, 4)
		})
	}
}

// A frame larger than the bound is queued when nothing else is, and
// delivered; while it is queued, the next one meets the policy.
func TestQueueBytesOversizedFrameAlone(t *testing.T) {
	for _, p := range []QueuePolicy{DropNew, DropOld, Block} {
		t.Run(p.String(), func(t *testing.T) {
			_, s := newTestStream(t, Options{QueueMaxBytes: 1 << 10, QueuePolicy: p})
			sub, _ := s.Subscribe(SubscribeOptions{})
			ctx := context.Background()
			if _, err := s.Publish(ctx, [][]byte{bigPayload(0, 100<<10)}); err != nil {
				t.Fatal(err)
			}
			if st := sub.Stats(); st.QueueLen != 1 || st.QueueBytes <= st.QueueMaxBytes || st.Dropped != 0 {
				t.Fatalf("oversized frame not queued: stats %+v", st)
			}
			want := uint64(0)
			switch p {
			case DropNew, DropOld:
				if _, err := s.Publish(ctx, [][]byte{bigPayload(1, 100<<10)}); err != nil {
					t.Fatal(err)
				}
				if st := sub.Stats(); st.QueueLen != 1 || st.Dropped != 1 {
					t.Fatalf("second oversized frame: stats %+v", st)
				}
				if p == DropOld {
					want = 1
				}
			case Block:
				pctx, cancel := context.WithCancel(ctx)
				published := make(chan error, 1)
				go func() {
					_, err := s.Publish(pctx, [][]byte{bigPayload(1, 100<<10)})
					published <- err
				}()
				waitGoroutineIn(t, published, "(*Subscription).makeRoom")
				cancel()
				if err := <-published; !errors.Is(err, context.Canceled) {
					t.Fatalf("publish: %v", err)
				}
			}
			checkSeq(t, drainNow(t, sub), want, 1)
		})
	}
}

// The zero Options bound every queue at 64 MiB.
func TestQueueBytesDefault(t *testing.T) {
	_, s := newTestStream(t, Options{})
	sub, _ := s.Subscribe(SubscribeOptions{})
	if st := sub.Stats(); st.QueueMaxBytes != 64<<20 {
		t.Fatalf("default byte bound %d", st.QueueMaxBytes)
	}
}

// The counter never drifts: with a consumer reading concurrently (batches
// coalesced up to WriteMaxBytes, so frames are carried to the next
// batch), frames of many sizes, a replay backlog (ring) or catch-up (log)
// ahead of live frames, drop_old evicting while the consumer takes, direct
// (sink) writes or not, on in-memory and log-backed streams: the queue
// never holds more than the bound, delivered + dropped == published
// (nothing is dropped under block), and the counters are back to zero
// once the consumer has drained the queue.
func TestQueueBytesCounterNeverDrifts(t *testing.T) {
	for _, logged := range []bool{false, true} {
		for _, p := range []QueuePolicy{DropNew, DropOld, Block} {
			for _, withSink := range []bool{false, true} {
				t.Run(fmt.Sprintf("logged=%v/%v/sink=%v", logged, p, withSink), func(t *testing.T) {
					b, s := newStreamOf(t, logged, Options{QueueMaxBytes: 16 << 10, QueuePolicy: p,
						MaxEventsPerFrame: 4, MaxBytesPerFrame: 6 << 10, WriteMaxBytes: 8 << 10})
					ctx := context.Background()
					r := rand.New(rand.NewPCG(7, uint64(p)))
					var published uint64
					publish := func() {
						batch := make([][]byte, 1+r.IntN(6))
						for i := range batch {
							batch[i] = bigPayload(published, 8+r.IntN(5<<10))
							published++
						}
						if _, err := s.Publish(ctx, batch); err != nil {
							t.Fatal(err)
						}
					}
					for range 10 { // the replay backlog (ring) or catch-up (log)
						publish()
					}
					sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
					if err != nil {
						t.Fatal(err)
					}
					sink := &flakySink{r: rand.New(rand.NewPCG(3, 4))}
					if withSink {
						sub.SetSink(sink)
					}
					var got []uint64
					readDone := make(chan error, 1)
					go func() {
						for {
							b, _, err := sub.NextBatch(ctx, nil)
							if err != nil {
								readDone <- err
								return
							}
							got = append(got, decodeFrames(t, b)...)
						}
					}()
					for range 400 {
						publish()
						checkBound(t, sub)
					}
					// Wait for the reader to account for everything (a log
					// replay still going on would end with the stream), then
					// end the subscription: it ends once its queue is drained.
					deadline := time.Now().Add(10 * time.Second)
					for sub.delivered.Load()+sub.dropped.Load() != published {
						if time.Now().After(deadline) {
							t.Fatalf("published %d, stats %+v", published, sub.Stats())
						}
						runtime.Gosched()
					}
					if err := b.DeleteStream("t", "ns", "s"); err != nil {
						t.Fatal(err)
					}
					if err := <-readDone; !errors.Is(err, ErrSubscriptionEnded) {
						t.Fatalf("reader: %v", err)
					}
					if frames, bytes := queued(sub); frames != 0 || bytes != 0 {
						t.Fatalf("drained queue still counts %d frames, %d bytes", frames, bytes)
					}
					for i := 1; i < len(got); i++ {
						if got[i] <= got[i-1] {
							t.Fatalf("event %d after %d", got[i], got[i-1])
						}
					}
					var direct []uint64
					for _, f := range sink.frames {
						direct = append(direct, decodeFrames(t, f)...)
					}
					st := sub.Stats()
					if uint64(len(got)+len(direct)) != st.Delivered || st.Delivered+st.Dropped != published ||
						(p == Block && st.Dropped != 0) {
						t.Fatalf("published %d: received %d (+%d direct), stats %+v", published, len(got), len(direct), st)
					}
					t.Logf("published %d: received %d (+%d direct), dropped %d", published, len(got), len(direct), st.Dropped)
				})
			}
		}
	}
}

// drop_old when most of the byte bound is held by the batch the consumer
// is writing: a new frame that could not fit even with the queue empty is
// dropped alone, and the queued frames are kept (before: every queued
// frame was dropped, and the new one too). Once that batch is written, a
// frame of the same size fits. The held count is back to zero at the end.
func TestQueueBytesDropOldKeepsQueueWhenWriterHoldsTheBytes(t *testing.T) {
	for _, logged := range []bool{false, true} {
		_, s := newStreamOf(t, logged, Options{})
		pol := DropOld
		sub, err := s.Subscribe(SubscribeOptions{Policy: &pol, QueueMaxBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		publish := func(seq uint64, size int) {
			t.Helper()
			if _, err := s.Publish(ctx, [][]byte{bigPayload(seq, size)}); err != nil {
				t.Fatal(err)
			}
		}
		publish(0, 600)
		b, _, err := sub.NextBatch(ctx, nil) // being written
		if err != nil {
			t.Fatal(err)
		}
		got := decodeFrames(t, b)
		for i := range uint64(3) {
			publish(1+i, 30)
		}
		publish(4, 450)
		if st := sub.Stats(); st.Dropped != 1 || st.QueueLen != 3 {
			t.Fatalf("logged=%v: dropped %d, queued %d frames; want 1 and 3", logged, st.Dropped, st.QueueLen)
		}
		b, _, err = sub.NextBatch(ctx, nil) // the 600 are written; the small ones are now
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, decodeFrames(t, b)...)
		publish(5, 450)
		if st := sub.Stats(); st.Dropped != 1 {
			t.Fatalf("logged=%v: dropped %d once the batch was written, want 1", logged, st.Dropped)
		}
		got = append(got, drainNow(t, sub)...)
		if want := []uint64{0, 1, 2, 3, 5}; !slices.Equal(got, want) {
			t.Fatalf("logged=%v: delivered %v, want %v", logged, got, want)
		}
		sub.mu.Lock()
		held := sub.held
		sub.mu.Unlock()
		if held != 0 {
			t.Fatalf("logged=%v: drained queue holds %d bytes as written", logged, held)
		}
	}
}
