package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// lane is one long-lived authenticated publish stream of the pool. Its
// session is reopened (on a redialed connection if needed) after it fails.
type lane struct {
	c    *Client
	slot *connSlot
	idx  int
	open gate // held while opening a session

	mu   sync.Mutex
	sess *pubSession
}

// pubSession is one authenticated bidirectional stream carrying publishes
// and their acks. Acked publishes are pipelined: each registers its request
// id, writes its frame, and waits; the read loop dispatches acks by id.
type pubSession struct {
	c     *Client
	str   *quic.Stream
	r     *wire.Reader
	flags uint16 // the broker's capabilities on this stream

	nextID atomic.Uint64 // request ids, from 1
	q      *writeQueue   // frames to the stream, in order
	// unconfirmed: a fire-and-forget frame was written, so only the
	// broker's end of the stream confirms it has been read (see finish).
	unconfirmed atomic.Bool
	// finishing: finish (Client.Close) is ending the send side. Writes
	// that take q.mu after it is set get ErrClosed and must not touch the
	// stream: a write to the closed stream would fail the session, which
	// resets the stream and discards the frames written before Close that
	// QUIC has not yet sent.
	finishing atomic.Bool

	mu      sync.Mutex
	pending map[uint64]chan error
	err     error         // why the session ended
	done    chan struct{} // closed when the session has failed
}

func (s *pubSession) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (l *lane) live() *pubSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess != nil && l.sess.alive() {
		return l.sess
	}
	return nil
}

// session returns the lane's live session, opening one if needed. With
// retry, lost connections are redialed (with backoff) until ctx ends;
// without it the first failure is returned (used by Dial).
func (l *lane) session(ctx context.Context, retry bool) (*pubSession, error) {
	if s := l.live(); s != nil {
		return s, nil
	}
	ctx, cancel := l.c.bind(ctx, true)
	defer cancel()
	if !l.open.enter(ctx) {
		return nil, l.c.ctxErr(ctx)
	}
	defer l.open.leave()
	for {
		if s := l.live(); s != nil {
			return s, nil
		}
		s, err := l.openSession(ctx)
		if err == nil {
			return s, nil
		}
		if !retry || !errors.Is(err, ErrDisconnected) || l.c.opts.Reconnect.Disabled {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, l.c.ctxErr(ctx)
		}
		// The next slot.get waits out the backoff before redialing.
	}
}

// openSession opens and authenticates a new session.
func (l *lane) openSession(ctx context.Context) (*pubSession, error) {
	str, r, flags, err := l.c.openAuthedStream(ctx, l.slot, "publish")
	if err != nil {
		return nil, err
	}
	s := &pubSession{c: l.c, str: str, r: r, flags: flags, pending: map[uint64]chan error{}, done: make(chan struct{})}
	s.q = newWriteQueue(str, s.done, l.c.ctx.Done())
	flush := func() {
		s.q.run(func(err error) { s.fail(&ConnectionError{Op: "publish", Err: fmt.Errorf("write: %w", err)}) })
	}
	if !l.c.goTracked(s.readLoop) || !l.c.goTracked(flush) {
		s.fail(ErrClosed)
		return nil, ErrClosed
	}
	l.mu.Lock()
	l.sess = s
	l.mu.Unlock()
	return s, nil
}

// fail ends the session: every pending publish gets err (ErrClosed once
// the client is closing) and the stream is cancelled both ways.
func (s *pubSession) fail(err error) {
	if s.c.isClosed() {
		err = ErrClosed
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	close(s.done)
	s.mu.Unlock()
	for _, ch := range pending {
		ch <- err
	}
	s.str.CancelRead(streamCodeCancel)
	s.str.CancelWrite(streamCodeCancel)
}

// errSessionGone: the session ended before a frame was written, so the
// publish can safely be sent on a new session.
var errSessionGone = errors.New("publish session ended")

// register reserves the ack slot of request id before its frame is written.
func (s *pubSession) register(id uint64) (chan error, error) {
	ch := make(chan error, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, errSessionGone
	}
	s.pending[id] = ch
	return ch, nil
}

func (s *pubSession) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// resolve hands an ack to its waiter. Unknown ids (a caller that gave up)
// are ignored.
func (s *pubSession) resolve(id uint64, err error) {
	s.mu.Lock()
	ch := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// write queues one complete frame for the stream (see writeQueue): frames
// of concurrent publishers share writes and packets, and a publish alone
// on the session is written at once. acked says the frame's ack slot is
// already registered. A write that fails later ends the session, and every
// pending ack gets the error.
func (s *pubSession) write(ctx context.Context, frame []byte, acked bool) error {
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.waitRoom(ctx); err != nil {
		return err
	}
	if !s.alive() {
		return errSessionGone
	}
	if s.finishing.Load() { // Client.Close is handing the stream over
		return ErrClosed
	}
	s.mu.Lock()
	inFlight := len(s.pending)
	s.mu.Unlock()
	if acked {
		inFlight-- // this frame's own slot
	}
	if inFlight == 0 && !q.flushing {
		// Alone on an idle stream: write it here, as one publisher at a
		// time would. A small frame is queued in QUIC at once; a larger
		// one takes the blocking write, which quic-go reads in place and
		// which holds the publisher to the stream's pace (see
		// transport.MaxTryWriteBytes). A failed or interrupted write may
		// leave half a frame on the stream, so it ends the session.
		if transport.TryWrite(s.str, frame) {
			return nil
		}
		if err := writeAll(ctx, s.str, frame); err != nil {
			s.fail(&ConnectionError{Op: "publish", Err: fmt.Errorf("write: %w", err)})
			return s.c.streamErr(ctx, "publish", err)
		}
		return nil
	}
	start := len(q.buf)
	q.buf = append(q.buf, frame...)
	q.commit(start, false)
	return nil
}

// finish ends the session's send side once every queued frame has been
// written, then waits until the broker ends the stream too, which it does
// after handling every frame before the end, or until ctx ends. So
// fire-and-forget frames already written are in the broker's hands when
// Client.Close closes the connection (closing it at once would discard
// what QUIC has not yet sent).
func (s *pubSession) finish(ctx context.Context) {
	q := s.q
	// From here on publishes get ErrClosed instead of being queued, so
	// racing publishes can neither keep the queue from draining nor keep
	// q.mu busy.
	s.finishing.Store(true)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		// TryLock, not Lock: a publish alone on the lane writes a large
		// frame directly while holding q.mu, and against a broker that
		// stopped reading that write lasts as long as its caller's
		// context, which may never end. Close must stay bounded by ctx.
		if !q.mu.TryLock() {
			select {
			case <-tick.C:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !s.alive() {
			q.mu.Unlock()
			return
		}
		// Nothing is being written (writes hold q.mu or set flushing), so
		// the stream may be closed here.
		if len(q.buf) == 0 && !q.flushing {
			_ = s.str.Close()
			q.mu.Unlock()
			break
		}
		q.mu.Unlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}

// readLoop reads acks until the stream fails.
func (s *pubSession) readLoop() {
	for {
		f, err := s.r.ReadFrame()
		if errors.Is(err, wire.ErrUnknownFlags) {
			continue
		}
		if err != nil {
			s.fail(&ConnectionError{Op: "publish", Err: err})
			return
		}
		if err := s.dispatch(f); err != nil {
			s.fail(err)
			return
		}
	}
}

// dispatch handles one frame from the broker on a publish stream.
func (s *pubSession) dispatch(f wire.Frame) error {
	switch f.Flags {
	case wire.FlagBinaryPublishAck:
		ack, err := wire.DecodePublishAck(f.Payload)
		if err != nil {
			return &ProtocolError{Detail: err.Error()}
		}
		if ack.OK {
			s.resolve(ack.RequestID, nil)
		} else {
			s.resolve(ack.RequestID, &ServerError{Message: ack.Message})
		}
		return nil
	case 0:
		m, err := wire.DecodeMessage(f.Payload)
		if err != nil {
			return &ProtocolError{Detail: err.Error()}
		}
		switch m := m.(type) {
		case *wire.PublishOK:
			s.resolve(m.RequestID, nil)
			return nil
		case *wire.PublishError:
			s.resolve(m.RequestID, &ServerError{Message: m.Message})
			return nil
		case *wire.ErrorMessage:
			// Not tied to a request: the broker closes the stream after
			// most of these, so every publish in flight here fails with it.
			return &ServerError{Message: m.Message}
		default:
			return &ProtocolError{Detail: fmt.Sprintf("unexpected %q on a publish stream", m.Type())}
		}
	}
	return &ProtocolError{Detail: fmt.Sprintf("unexpected frame flags %#04x on a publish stream", f.Flags)}
}
