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

func newLoggedStream(t *testing.T, o Options, lg commitlog.Log) (*Broker, *Stream) {
	t.Helper()
	b := New(o)
	s, err := b.DeclareLoggedStream("t", "ns", "s", StreamOptions{Log: lg, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, s
}

// drainN reads frames until n events have arrived (or a timeout).
func drainN(t *testing.T, sub *Subscription, n int) []uint64 {
	t.Helper()
	var out []uint64
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < n {
		b, _, err := sub.NextBatch(ctx, nil)
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, decodeFrames(t, b)...)
	}
	return out
}

func TestLoggedConcurrentPublishersFanOutInOffsetOrder(t *testing.T) {
	lg := commitlog.NewMemory(1<<20, 1<<30)
	_, s := newLoggedStream(t, Options{QueueCapacity: 1 << 16}, lg)
	sub, _ := s.Subscribe(SubscribeOptions{WantOffsets: true})
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seq := uint64(w*each + i)
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(seq), seqPayload(seq)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Read frames with offsets: they must be contiguous from 0, and each
	// publish's two events adjacent.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var eb wire.BinaryEventBatch
	next := uint64(0)
	var got []uint64
	for next < writers*each*2 {
		b, _, err := sub.NextBatch(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			f, rest, _ := wire.DecodeFrame(b, 0)
			if err := wire.DecodeEventBatch(f.Flags, f.Payload, &eb); err != nil || !eb.HasOffsets {
				t.Fatalf("frame %#x: %v", f.Flags, err)
			}
			if eb.BaseOffset != next {
				t.Fatalf("frame at offset %d, want %d", eb.BaseOffset, next)
			}
			next += uint64(len(eb.Payloads))
			for _, p := range eb.Payloads {
				got = append(got, seqOf(p))
			}
			b = rest
		}
	}
	for i := 0; i < len(got); i += 2 {
		if got[i] != got[i+1] {
			t.Fatalf("a batch was split by another publisher at %d", i)
		}
	}
	if lg.Next() != writers*each*2 || s.Tail() != lg.Next() {
		t.Fatalf("log next %d, tail %d", lg.Next(), s.Tail())
	}
}

func seqOf(p []byte) uint64 {
	return uint64(p[0])<<56 | uint64(p[1])<<48 | uint64(p[2])<<40 | uint64(p[3])<<32 | uint64(p[4])<<24 | uint64(p[5])<<16 | uint64(p[6])<<8 | uint64(p[7])
}

// A subscriber that resumes at offset N while publishing continues sees
// every later event exactly once: catch-up from the log, then live.
func TestLoggedResumeWhilePublishing(t *testing.T) {
	lg := commitlog.NewMemory(1<<20, 1<<30)
	_, s := newLoggedStream(t, Options{QueueCapacity: 1 << 16, MaxEventsPerFrame: 7}, lg)
	ctx := context.Background()
	const total = 20000
	for i := range uint64(5000) {
		s.Publish(ctx, [][]byte{seqPayload(i)})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(5000); i < total; i++ {
			s.Publish(ctx, [][]byte{seqPayload(i)})
		}
	}()
	var subs []*Subscription
	for _, from := range []uint64{0, 1234, 4999, 5000} {
		sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartOffset, Offset: from}})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	<-done
	for i, sub := range subs {
		from := []uint64{0, 1234, 4999, 5000}[i]
		checkSeq(t, drainN(t, sub, int(total-from)), from, total-from)
	}
	// With nothing left to replay, the next call joins live delivery; the
	// next publish then arrives through the subscription's queue.
	for _, sub := range subs {
		idle, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		sub.NextBatch(idle, nil)
		cancel()
		if sub.catchUp {
			t.Fatal("still in catch-up with nothing left to replay")
		}
	}
	s.Publish(ctx, [][]byte{seqPayload(total)})
	for _, sub := range subs {
		if len(sub.q) != 1 {
			t.Fatalf("live publish not queued (queue %d)", len(sub.q))
		}
		if got := drainN(t, sub, 1); got[0] != total {
			t.Fatalf("after catch-up got %d, want %d", got[0], total)
		}
	}
}

func TestLoggedCursorErrors(t *testing.T) {
	lg := commitlog.NewMemory(100, 1<<20) // keeps the newest 100
	_, s := newLoggedStream(t, Options{}, lg)
	for i := range uint64(150) {
		s.Publish(context.Background(), [][]byte{seqPayload(i)})
	}
	for _, c := range []struct {
		start wire.StartPosition
		want  CursorError
	}{
		{wire.StartPosition{Kind: wire.StartOffset, Offset: 151}, CursorError{Requested: 151, Available: 150}},
		{wire.StartPosition{Kind: wire.StartOffset, Offset: 10}, CursorError{TooOld: true, Requested: 10, Available: 50}},
	} {
		var ce *CursorError
		if _, err := s.Subscribe(SubscribeOptions{Start: c.start}); !errors.As(err, &ce) || *ce != c.want {
			t.Fatalf("start %+v: %v", c.start, err)
		}
	}
	sub, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, drainN(t, sub, 100), 50, 100)
}

// failLog fails every append.
type failLog struct{ commitlog.Log }

func (failLog) Append(context.Context, [][]byte) (uint64, error) {
	return 0, errors.New("disk on fire")
}

func TestLoggedAppendFailureFailsStream(t *testing.T) {
	_, s := newLoggedStream(t, Options{}, failLog{commitlog.NewMemory(10, 1<<20)})
	sub, _ := s.Subscribe(SubscribeOptions{})
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(1)}); err == nil {
		t.Fatal("append error swallowed")
	}
	if _, err := s.Publish(context.Background(), [][]byte{seqPayload(2)}); err == nil {
		t.Fatal("publish to a failed stream accepted")
	}
	if _, _, err := sub.NextBatch(context.Background(), nil); !errors.Is(err, ErrSubscriptionEnded) {
		t.Fatalf("subscription of a failed stream: %v", err)
	}
}

// A durable append refused by a full disk fails that publish only, with
// ErrStorage naming the stream and the OS reason (not the server's
// paths): the stream goes on, its subscribers and readers are served, and
// the first publish once the disk has room is stored at the next offset.
func TestLoggedWriteErrorKeepsStream(t *testing.T) {
	lg := fulldisk.New(commitlog.NewMemory(1<<20, 1<<30))
	_, s := newLoggedStream(t, Options{}, lg)
	sub, _ := s.Subscribe(SubscribeOptions{WantOffsets: true})
	ctx := context.Background()
	for i := range uint64(2) {
		if _, err := s.Publish(ctx, [][]byte{seqPayload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	lg.Full.Store(true)
	for range 3 {
		_, err := s.Publish(ctx, [][]byte{seqPayload(99)})
		if !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrStoredNotDelivered) {
			t.Fatalf("publish on a full disk: %v, want ErrStorage wrapping ENOSPC", err)
		}
		for _, want := range []string{"not stored", "t/ns/s", "no space left on device"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "/data/") {
			t.Fatalf("error %q shows a server path", err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream ended by a full disk: %v", err)
	}
	rd, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatalf("subscribe from earliest while the disk is full: %v", err)
	}
	checkSeq(t, drainN(t, rd, 2), 0, 2)
	lg.Full.Store(false)
	if first, err := s.Publish(ctx, [][]byte{seqPayload(2)}); err != nil || first != 2 {
		t.Fatalf("publish once the disk has room: offset %d, %v; want 2", first, err)
	}
	checkSeq(t, drainN(t, sub, 3), 0, 3)
}
