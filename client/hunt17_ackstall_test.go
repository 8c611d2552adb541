package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// ackUntilBlocked runs AckAsync of offsets from base (frames of one size)
// in a goroutine until one fails: the window fills, and an ack then takes
// the blocking write (holding the consumer's write lock) and waits for
// credit. It returns once no ack has returned for 100ms: the number that
// returned, and a channel that gets that number and the first error.
func ackUntilBlocked(t *testing.T, co *Consumer, base uint64) (<-chan ackRun, int64) {
	t.Helper()
	var acked atomic.Int64
	done := make(chan ackRun, 1)
	go func() {
		for i := uint64(0); ; i++ {
			if err := (&Message{Offset: base + i, co: co}).AckAsync(); err != nil {
				done <- ackRun{int(i), err}
				return
			}
			acked.Add(1)
		}
	}()
	ctx := testCtx(t)
	for last := int64(-1); ; {
		select {
		case <-ctx.Done():
			t.Fatal("acks never stopped")
		case <-time.After(100 * time.Millisecond):
		}
		n := acked.Load()
		if n == last {
			return done, n
		}
		last = n
	}
}

type ackRun struct {
	acked int
	err   error
}

// An Ack whose write waits for flow-control credit the broker never
// gives, under a context without a deadline, held the consumer's write
// lock for as long as its caller waited (RequestTimeout did not bound the
// write), and Close waited behind it and behind a blocked AckAsync: here
// RequestTimeout is an hour, and Close returned only when the test gave
// up. Now Close interrupts the write under way and those waiting for
// their turn; each gets ErrClosed.
func TestHunt17CloseNotHeldByStalledAck(t *testing.T) {
	gate := make(chan struct{})
	acks, ended := make(chan []uint64, gatedWindow), make(chan string, 1)
	addr := startGatedQueueBroker(t, gate, acks, ended)
	co := dialGatedConsumer(t, addr, Options{RequestTimeout: time.Hour})
	const base = 100_000
	blocked, _ := ackUntilBlocked(t, co, base) // an AckAsync holds the lock

	// An Ack with no deadline of its own, waiting for the lock.
	errB := make(chan error, 1)
	go func() {
		errB <- (&Message{Offset: base - 1, co: co}).Ack(context.Background())
	}()
	time.Sleep(50 * time.Millisecond) // let it reach the lock

	closed := make(chan error, 1)
	go func() { closed <- co.Close() }()
	ctx := testCtx(t)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close waited behind an ack the broker does not read")
	}
	select {
	case r := <-blocked:
		if !errors.Is(r.err, ErrClosed) {
			t.Errorf("AckAsync during Close: %v, want ErrClosed", r.err)
		}
	case <-ctx.Done():
		t.Fatal("AckAsync never returned")
	}
	select {
	case err := <-errB:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Ack during Close: %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Ack never returned")
	}
	// The broker then reads whole acks, in order, and a stream that ends
	// cleanly or is reset: never half a frame.
	close(gate)
	for next := uint64(base); ; next++ {
		select {
		case offs := <-acks:
			if len(offs) != 1 || offs[0] != next {
				t.Fatalf("queue_ack of %v, want [%d]", offs, next)
			}
			continue
		case how := <-ended:
			if how != "leave" && how != "reset" {
				t.Fatalf("queue stream ended with %s", how)
			}
		case <-ctx.Done():
			t.Fatal("queue stream never ended")
		}
		break
	}
}
