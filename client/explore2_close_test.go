package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// Close is bounded even when a fire-and-forget publish is blocked in its
// own write (a frame larger than one packet, written directly on an idle
// lane) because the broker stopped reading: Close must not wait for the
// publisher's context, which may never end.
func TestCloseBoundedWhenBrokerStopsReadingDuringDirectWrite(t *testing.T) {
	c, _ := dialStalledBroker(t)
	value := make([]byte, 64<<10)
	errc := make(chan error, 1)
	go func() {
		// No deadline: the caller relies on Close to end it.
		for {
			if err := c.Publish(context.Background(), "default", "s", value, WithAck(wire.AckNone)); err != nil {
				errc <- err
				return
			}
		}
	}()
	// Let the stream window fill so a publish blocks in its write.
	l := c.laneFor("default", "s")
	for deadline := time.Now().Add(testwait.Liveness); ; {
		s := l.live()
		if s != nil && s.unconfirmed.Load() {
			if !s.q.mu.TryLock() {
				break // a write holds the queue: blocked on flow control
			}
			busy := s.q.flushing // a direct write under way (it releases mu)
			s.q.mu.Unlock()
			if busy {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no publish blocked on the stalled broker")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the writer is parked in Write
	closed := make(chan struct{})
	start := time.Now()
	go func() { _ = c.Close(); close(closed) }()
	select {
	case <-closed:
		t.Logf("Close returned after %v", time.Since(start))
	case <-time.After(closeFlushTimeout + 3*time.Second):
		t.Fatalf("Close still waiting %v after a broker stopped reading (bound is %v)", time.Since(start), closeFlushTimeout)
	}
	select {
	case err := <-errc:
		t.Logf("publisher ended with %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked publish did not end after Close")
	}
}

// Close racing fire-and-forget publishes: every publish that returned nil
// before Close was called reaches the broker (Close hands written
// publishes over), even though other publishes keep arriving during Close.
func TestCloseRacingFireAndForgetKeepsEarlierPublishes(t *testing.T) {
	for round := range 5 {
		b := startBroker(t)
		stream, err := b.Broker.Stream("default", "default", "demo")
		if err != nil {
			t.Fatal(err)
		}
		sub, err := stream.Subscribe(broker.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		var mu sync.Mutex
		got := map[uint64]bool{}
		readerDone := make(chan struct{})
		go func() { // drain the broker-side subscription (block policy)
			defer close(readerDone)
			for {
				buf, _, err := sub.NextBatch(ctx, nil)
				if err != nil {
					return
				}
				r := wire.NewReader(bytes.NewReader(buf), 1<<24)
				for {
					f, err := r.ReadFrame()
					if err != nil {
						break
					}
					var batch wire.BinaryEventBatch
					if err := wire.DecodeEventBatch(f.Flags, f.Payload, &batch); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, p := range batch.Payloads {
						got[binary.BigEndian.Uint64(p)] = true
					}
					mu.Unlock()
				}
			}
		}()
		c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1})
		var closing atomic.Bool
		var before sync.Map // seq -> struct{}: returned nil before Close began
		var wg sync.WaitGroup
		const gor = 4
		for g := range gor {
			wg.Go(func() {
				for i := 0; i < 200000; i++ {
					seq := uint64(g)<<32 | uint64(i)
					var p [8]byte
					binary.BigEndian.PutUint64(p[:], seq)
					err := c.Publish(ctx, "default", "demo", p[:], WithAck(wire.AckNone))
					if err != nil {
						return
					}
					if !closing.Load() {
						before.Store(seq, struct{}{})
					}
				}
			})
		}
		// Let the publishers get going, then close under them.
		waitPublished(t, stream, 2000, "events the publishers should have sent by now")
		closing.Store(true)
		start := time.Now()
		_ = c.Close()
		closeTook := time.Since(start)
		wg.Wait()
		// Wait until the reader has everything the broker stored.
		for deadline := time.Now().Add(testwait.Liveness); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if uint64(n) >= stream.Stats().Published || time.Now().After(deadline) {
				break
			}
		}
		sub.Close()
		<-readerDone
		mu.Lock()
		defer mu.Unlock()
		var lost, total int
		before.Range(func(k, _ any) bool {
			total++
			if !got[k.(uint64)] {
				lost++
			}
			return true
		})
		t.Logf("round %d: %d published before Close, %d of them lost; %d stored; Close took %v", round, total, lost, len(got), closeTook)
		if lost > 0 {
			t.Errorf("round %d: %d fire-and-forget publishes that returned before Close never reached the broker", round, lost)
		}
	}
}

// After Client.Close, a Publisher of that client refuses events with
// ErrClosed instead of queueing them where nothing will ever send them.
func TestPublisherPublishAfterClientCloseIsErrClosed(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	p := c.Publisher("default", "demo", PublisherOptions{})
	if err := p.Publish(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := p.Publish(ctx, []byte("after")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish on a Publisher of a closed client = %v, want ErrClosed", err)
	}
}

// Client.Close under a shared Publisher used by many goroutines (plus
// Flush callers): every call returns (nil or ErrClosed / a queue-full
// error), nothing deadlocks, and Close is bounded.
func TestCloseUnderBusyPublisher(t *testing.T) {
	for _, noAck := range []bool{false, true} {
		b := startBroker(t)
		c := dial(t, b, Options{})
		ctx := testCtx(t)
		p := c.Publisher("default", "demo", PublisherOptions{NoAck: noAck, QueueSize: 64, MaxBatch: 8})
		var wg sync.WaitGroup
		var published atomic.Int64
		for g := range 8 {
			wg.Go(func() {
				for i := range 100000 {
					var err error
					if g == 0 && i%50 == 0 {
						err = p.Flush(ctx)
					} else {
						err = p.Publish(ctx, []byte("x"))
					}
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("goroutine %d: %v", g, err)
						}
						return
					}
					published.Add(1)
				}
			})
		}
		for deadline := time.Now().Add(5 * time.Second); published.Load() < 5000 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		closed := make(chan struct{})
		go func() { _ = c.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Client.Close under a busy Publisher did not return")
		}
		waited := make(chan struct{})
		go func() { wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Fatal("Publisher callers still blocked after Client.Close")
		}
		if err := p.Close(ctx); err != nil && !errors.Is(err, ErrClosed) {
			t.Logf("Publisher.Close after Client.Close: %v", err)
		}
	}
}
