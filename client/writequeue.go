package client

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
)

// maxQueuedBytes bounds the frames a writeQueue holds for its flusher (plus
// one frame, which may be larger). It is reached only when frames come
// faster than the stream takes them, e.g. a broker that stopped reading
// (no flow-control credit): callers then wait for room, bounded by their
// context.
const maxQueuedBytes = 4 << 20

// streamWriter is the part of a QUIC stream a writeQueue writes to.
type streamWriter interface {
	TryWriteAll([]byte) error
	Write([]byte) (int, error)
}

// writeQueue coalesces the frames bound for one stream. Callers append
// complete frames to buf under mu (so their own bookkeeping, such as reply
// order, follows the same order) and then call commit. A frame alone on an
// idle stream is written at once; otherwise the queue's flusher goroutine
// (run) writes what has accumulated. Before taking the queue the flusher
// yields once, so callers that are already runnable (typically woken
// together by a batch of replies) append theirs first and the group leaves
// in one stream write, sharing QUIC packets. Without it Go's scheduler runs
// quic-go's send loop right after each caller blocks, and nearly every
// frame costs a packet of its own.
type writeQueue struct {
	str    streamWriter
	done   <-chan struct{} // the session's end
	closed <-chan struct{} // the client's end

	mu         sync.Mutex
	buf, spare []byte
	flushing   bool          // the flusher was kicked or is writing, or a publish's direct write is under way
	kick       chan struct{} // cap 1
	// Callers wait while buf holds maxQueuedBytes: drained is closed, and
	// replaced, when the flusher takes the buffer and someone is waiting.
	waiting int
	drained chan struct{}
}

func newWriteQueue(str streamWriter, done, closed <-chan struct{}) *writeQueue {
	return &writeQueue{str: str, done: done, closed: closed, kick: make(chan struct{}, 1)}
}

// waitRoom waits, with mu held on entry and on return, until buf holds
// less than maxQueuedBytes. It returns ctx's error, ErrClosed (the client
// closed) or errSessionGone (the session ended; the caller queued nothing).
// Any error means the caller queued nothing.
func (q *writeQueue) waitRoom(ctx context.Context) error {
	for len(q.buf) >= maxQueuedBytes {
		if q.drained == nil {
			q.drained = make(chan struct{})
		}
		ch := q.drained
		q.waiting++
		q.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
			select {
			case <-q.closed: // the context of a closing client's call
				err = ErrClosed
			default:
			}
		case <-q.closed:
			err = ErrClosed
		case <-q.done:
			err = errSessionGone
		}
		q.mu.Lock()
		q.waiting--
		if err != nil {
			return err
		}
	}
	return nil
}

// commit hands the frame appended at buf[start:] to the stream, with mu
// held. alone says the caller has nothing else in flight to share a packet
// with: then, when nothing is queued, a small frame is written at once,
// saving the flusher's hop.
func (q *writeQueue) commit(start int, alone bool) {
	if q.flushing {
		return // the flusher's next write takes it
	}
	if alone && start == 0 && transport.TryWrite(q.str, q.buf) {
		q.buf = q.buf[:0]
		return
	}
	q.flushing = true
	q.kick <- struct{}{} // never blocks: only the caller that sets flushing sends
}

// run is the flusher: it writes queued frames until the session ends or a
// write fails, which it reports to fail (part of a frame may be on the
// stream then, so the session is unusable; see awaitBrokerEnd for when).
// A write waiting for flow-control credit blocks until it gets it or the
// stream is cancelled.
func (q *writeQueue) run(fail func(error)) {
	for {
		select {
		case <-q.kick:
		case <-q.done:
			return
		}
		runtime.Gosched()
		q.mu.Lock()
		for len(q.buf) > 0 {
			buf := q.buf
			q.buf, q.spare = q.spare[:0], nil
			if q.waiting > 0 {
				close(q.drained)
				q.drained = nil
			}
			q.mu.Unlock()
			if err := q.write(buf); err != nil {
				q.awaitBrokerEnd(err)
				fail(err)
				return
			}
			q.mu.Lock()
			if cap(buf) <= 64<<10 { // do not pin a large frame's buffer
				q.spare = buf
			}
		}
		q.flushing = false
		q.mu.Unlock()
	}
}

// brokerEndGrace bounds how long a session whose broker stopped reading
// waits for the broker's end of the stream (see awaitBrokerEnd).
const brokerEndGrace = 5 * time.Second

// awaitBrokerEnd, after a write failed with err, waits until the session
// ends (its read loop sees the broker's end of the stream), the client
// closes or brokerEndGrace passes, when err says the broker stopped
// reading the stream (STOP_SENDING). The broker may still be sending the
// replies to the requests it read before: one that stops reading because
// the stream's token expired writes them, then resets the stream with
// code 3, and with RESET_STREAM_AT they arrive before the reset. Failing
// the session at once would cut them off (its read side is cancelled),
// and requests the broker served would get the reset's error. Meanwhile
// new frames stay queued, unwritten, and their requests get the error the
// session ends with.
func (q *writeQueue) awaitBrokerEnd(err error) {
	var se *quic.StreamError
	if !errors.As(err, &se) || !se.Remote {
		return
	}
	t := time.NewTimer(brokerEndGrace)
	defer t.Stop()
	select {
	case <-q.done:
	case <-q.closed:
	case <-t.C:
	}
}

func (q *writeQueue) write(b []byte) error {
	if transport.TryWrite(q.str, b) {
		return nil
	}
	_, err := q.str.Write(b)
	return err
}

// closeWhenFlushed calls closeSend (ending the stream's send side) once
// every queued frame has been written and no write is under way, and
// returns its error. It gives up with ctx's error when ctx ends, or with
// errSessionGone when alive reports the session ended. The caller must
// already keep new frames out of the queue (they would be written after
// closeSend).
func (q *writeQueue) closeWhenFlushed(ctx context.Context, alive func() bool, closeSend func() error) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		// TryLock, not Lock: this must stay bounded by ctx, whoever
		// holds mu. (A publish's blocking direct write releases mu and
		// sets flushing instead, see pubSession.write.)
		if q.mu.TryLock() {
			if !alive() {
				q.mu.Unlock()
				return errSessionGone
			}
			// Nothing is being written (writes hold mu or set flushing),
			// so the send side may be closed here.
			if len(q.buf) == 0 && !q.flushing {
				err := closeSend()
				q.mu.Unlock()
				return err
			}
			q.mu.Unlock()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
