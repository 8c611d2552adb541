package client

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	mu       sync.Mutex
	sess     *pubSession
	retiring *pubSession // the session a rotation is ending, if any
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

	// Token rotation (see rotate.go). life is the validity of the
	// stream's token (zero exp: never rotated); rot schedules the move to a fresh
	// token before then. retiring: a newer session has taken over, so
	// writes that take q.mu after it is set get errSessionGone (nothing
	// was written; the publish goes to the new session) and the stream's
	// send side is finished. ready is nil, or, for a session a rotation
	// opened, closed once the session it replaces has ended: publishes
	// wait for it, so that they are stored after every publish sent on
	// the old stream, in the order of the calls.
	life       tokenLife
	rot        rotation
	retiring   atomic.Bool
	sendClosed atomic.Bool // the send side was finished (FIN)
	ready      chan struct{}

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
	for attempt := 1; ; attempt++ {
		if s := l.live(); s != nil {
			return s, nil
		}
		s, err := l.openSession(ctx, "", nil)
		if err == nil {
			return s, nil
		}
		if !retry || !errors.Is(err, ErrDisconnected) || l.c.opts.Reconnect.Disabled {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, l.c.ctxErr(ctx)
		}
		if err := l.c.reopenWait(ctx, l.slot, attempt); err != nil {
			return nil, err
		}
	}
}

// reopenWait waits, after the attempt-th failure to open a session on
// slot's connection, for the reconnect backoff while that connection is
// still up. (When it is gone, the next connSlot.get dials, spacing dials
// itself.) A session can fail to open on a connection that is up: a
// draining broker resets every new stream while it keeps its connections
// open until the drain ends (up to its shutdown timeout), and retrying at
// once would open and authenticate streams in a tight loop all that time.
// It returns ErrClosed or ctx's error when they end the wait.
func (c *Client) reopenWait(ctx context.Context, slot *connSlot, attempt int) error {
	if slot.current() == nil {
		return nil
	}
	if sleep(ctx, c.backoff(attempt)) != nil {
		return c.ctxErr(ctx)
	}
	return nil
}

// openSession opens a new session, authenticated with token (empty: a
// token from Client.token), and makes it the lane's. replaces: the session
// a rotation is replacing, or nil; then the new session waits for ready to
// be closed before carrying publishes, and replaces becomes the lane's
// retiring session in the same step as the new one becomes its session,
// so Client.Close (finishLanes) always sees one of them carrying the old
// stream's fire-and-forget publishes.
func (l *lane) openSession(ctx context.Context, token string, replaces *pubSession) (*pubSession, error) {
	as, err := l.c.openAuthedStream(ctx, l.slot, "publish", token)
	if err != nil {
		return nil, err
	}
	s := &pubSession{c: l.c, str: as.str, r: as.r, flags: as.flags, life: as.life,
		pending: map[uint64]chan error{}, done: make(chan struct{})}
	if replaces != nil {
		s.ready = make(chan struct{})
	}
	s.q = newWriteQueue(as.str, s.done, l.c.ctx.Done())
	flush := func() {
		s.q.run(func(err error) { s.fail(&ConnectionError{Op: "publish", Err: fmt.Errorf("write: %w", err)}) })
	}
	if !l.c.goTracked(s.readLoop) || !l.c.goTracked(flush) {
		s.fail(ErrClosed)
		return nil, ErrClosed
	}
	l.mu.Lock()
	l.sess = s
	if replaces != nil {
		l.retiring = replaces
	}
	l.mu.Unlock()
	d, ok := sessionRotateDelay(time.Now(), s.life)
	s.rot.schedule(l.c, d, ok, func() { l.rotate(s) })
	return s, nil
}

// rotate moves the lane from old to a session authenticated with a fresh
// token, before old's token expires (see rotate.go): new publishes go to
// the new session once old has ended, which it does after the broker has
// answered every publish sent on it.
func (l *lane) rotate(old *pubSession) {
	ctx, cancel := l.c.rotateCtx()
	defer cancel()
	// A session a rotation opened is not replaced before it carries
	// publishes (the session it replaces has ended): its successor would
	// carry them while that one may still be sending its own.
	if err := old.waitReady(ctx); err != nil {
		if ctx.Err() != nil && old.alive() {
			old.rot.retry(l.c, old.life.exp, func() { l.rotate(old) })
		}
		return
	}
	s, err := replaceSession(ctx, l.c, l.open, l.live, old, old.life.exp, func(ctx context.Context, token string) (*pubSession, error) {
		return l.openSession(ctx, token, old)
	})
	if s == nil {
		if err != nil {
			l.c.logRotation("publish", old.life.exp, err)
			old.rot.retry(l.c, old.life.exp, func() { l.rotate(old) })
		}
		return
	}
	l.c.logRotation("publish", old.life.exp, nil)
	old.retire(ctx) // openSession made it the lane's retiring session
	close(s.ready)
	l.mu.Lock()
	if l.retiring == old {
		l.retiring = nil
	}
	l.mu.Unlock()
}

// retire ends a session a rotation replaced: writes no longer go to it,
// its send side is finished once what is queued has been written, and it
// ends when the broker, having answered everything before, ends its side.
// If that takes longer than ctx allows, the session fails.
func (s *pubSession) retire(ctx context.Context) {
	s.rot.stop()
	s.retiring.Store(true)
	if err := s.endSend(ctx); err != nil && s.alive() {
		s.fail(retireErr("publish", err))
	}
}

// waitReady waits until the session may carry publishes: at once, but for
// a session a rotation opened, until the session it replaces has ended.
func (s *pubSession) waitReady(ctx context.Context) error {
	if s.ready == nil {
		return nil
	}
	select {
	case <-s.ready:
		return nil
	default:
	}
	select {
	case <-s.ready:
		return nil
	case <-s.done:
		return errSessionGone
	case <-s.c.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail ends the session: every pending publish gets err (ErrClosed once
// the client is closing) and the stream is cancelled both ways, unless
// both sides had finished it (cleanEnd).
func (s *pubSession) fail(err error) {
	clean := cleanEnd(s.sendClosed.Load(), err)
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
	s.rot.stop()
	for _, ch := range pending {
		ch <- err
	}
	s.str.CancelRead(streamCodeCancel)
	if !clean {
		s.str.CancelWrite(streamCodeCancel)
	}
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
	if s.retiring.Load() { // a rotation replaced the session
		return errSessionGone
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
		// transport.MaxTryWriteBytes). One its context interrupts
		// leaves no half frame on the stream (see directWritten).
		if transport.TryWrite(s.str, frame) {
			return nil
		}
		// The blocking write lasts as long as this caller's context
		// allows (a broker that stopped reading holds it): it is made
		// with the stream marked busy (flushing) and without mu, so
		// other publishers queue their frames behind it and wait, if
		// at all, by their own contexts (waitRoom), not for mu. What
		// they queued goes to the flusher afterwards.
		q.flushing = true
		q.mu.Unlock()
		n, err := writeSome(ctx, s.str, frame)
		q.mu.Lock()
		return s.directWritten(ctx, frame, n, err, acked)
	}
	start := len(q.buf)
	q.buf = append(q.buf, frame...)
	q.commit(start, false)
	return nil
}

// directWritten ends a direct write of frame (see write), of which n
// bytes were written, with q.mu held. When ctx ended the write (the
// frame waited for flow-control credit), nothing is left half-written:
// a frame not begun is dropped, and the rest of one begun goes ahead of
// the frames queued meanwhile, for the flusher to write. Ending the
// session instead would reset the stream, and the broker would discard
// every frame it has not read yet, fire-and-forget publishes that
// returned nil among them. Another failure ends the session.
func (s *pubSession) directWritten(ctx context.Context, frame []byte, n int, err error, acked bool) error {
	q := s.q
	if err != nil && (ctx.Err() == nil || err != ctx.Err()) {
		s.fail(&ConnectionError{Op: "publish", Err: fmt.Errorf("write: %w", err)})
		return s.c.streamErr(ctx, "publish", err)
	}
	if err != nil && n > 0 {
		// The caller gives up, but its frame is on its way: it may be
		// stored (as when a context ends while waiting for an ack).
		rest := make([]byte, 0, len(frame)-n+len(q.buf))
		rest = append(append(rest, frame[n:]...), q.buf...)
		q.buf = rest
		if !acked {
			s.unconfirmed.Store(true) // Close lets it reach the broker
		}
	}
	if len(q.buf) > 0 {
		q.kick <- struct{}{} // flushing stays set: the flusher takes over (never blocks, as in commit)
	} else {
		q.flushing = false
	}
	return s.c.streamErr(ctx, "publish", err)
}

// finish ends the session's send side once every queued frame has been
// written, then waits until the broker ends the stream too, which it does
// after handling every frame before the end, or until ctx ends. So
// fire-and-forget frames already written are in the broker's hands when
// Client.Close closes the connection (closing it at once would discard
// what QUIC has not yet sent).
func (s *pubSession) finish(ctx context.Context) {
	// From here on publishes get ErrClosed instead of being queued, so
	// racing publishes can neither keep the queue from draining nor keep
	// q.mu busy.
	s.finishing.Store(true)
	s.endSend(ctx)
}

// endSend finishes the send side once the queue is flushed (writes must
// already be kept out: finishing or retiring) and waits for the session to
// end (see endStream).
func (s *pubSession) endSend(ctx context.Context) error {
	return endStream(ctx, s.q, s.alive, s.closeSend, s.done)
}

func (s *pubSession) closeSend() error {
	err := s.str.Close()
	if err == nil {
		s.sendClosed.Store(true)
	}
	return err
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

// cleanEnd reports whether a session that failed with err ended cleanly:
// both sides finished (the client's send side, then the broker's at the
// end of its replies), so the stream needs no reset.
func cleanEnd(sendClosed bool, err error) bool {
	return sendClosed && errors.Is(err, io.EOF)
}
