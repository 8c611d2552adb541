package client

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testwait"
)

// ackUntilBlocked runs AckAsync of offsets from base (frames of one size)
// in a goroutine until one fails: the window fills, and an ack then takes
// the blocking write (holding the consumer's write lock) and waits for
// credit. It returns once an ack is in that write (it stays there until
// Close: the broker reads nothing): the number that returned, and a
// channel that gets that number and the first error. (Waiting for the
// acks to pause for 100ms instead could take an ack goroutine the
// scheduler had not run for one blocked, and the test then did not test
// Close against the blocking write.)
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
	testwait.Eventually(t, "an AckAsync blocked in its write", func() bool {
		select {
		case r := <-done:
			t.Fatalf("acks stopped after %d with %v before one blocked", r.acked, r.err)
		default:
		}
		return inBlockingAckWrite()
	})
	return done, acked.Load()
}

// inBlockingAckWrite reports whether a goroutine is in the blocking write
// of an ack (Consumer.writeSettled), taken when flow control has no room.
func inBlockingAckWrite() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Contains(buf[:n], []byte("client.(*Consumer).writeSettled("))
		}
		buf = make([]byte, 2*len(buf))
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
