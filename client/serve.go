package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// ServeOption configures Serve.
type ServeOption func(*serveConfig)

type serveConfig struct{ maxInFlight uint64 }

// WithMaxInFlight bounds the requests the handler runs at once (and the
// broker sends before an answer); the broker caps it at 64, its default.
func WithMaxInFlight(n int) ServeOption {
	return func(c *serveConfig) { c.maxInFlight = uint64(max(n, 1)) }
}

// Handler answers one request; an error is sent to the requester as a
// *ResponderError with its text.
type Handler func(ctx context.Context, req []byte) ([]byte, error)

// Service is a running responder (Serve). When its stream is lost (the
// connection dropped, the broker restarted, its token expired) it serves
// again on a new stream, with the client's reconnect backoff, as a NATS
// subscription is resubscribed; requests in flight on the lost stream fail
// at their requesters with responder_gone. It ends with Close, its
// context, the client's Close, a broker refusing to serve it again (Err
// says why) or, with Options.Reconnect.Disabled, the first loss.
type Service struct {
	c         *Client
	namespace string
	service   string
	cfg       serveConfig
	cancel    context.CancelFunc
	done      chan struct{}
	err       error
	reserved  atomic.Int64 // streams opened again after a loss
	slot      *connSlot    // the event connection's slot: every stream of the service is opened there (pickSlot)
}

// serveStream is one stream a Service serves on: the first, or one
// opened after a loss.
type serveStream struct {
	str *quic.Stream
	r   *wire.Reader
	// q coalesces the answers of handlers that finish together into
	// shared stream writes (and packets); its flusher ends with ended.
	q     *writeQueue
	ended chan struct{}
	// werr is the write failure that ended the stream, if one did.
	wmu  sync.Mutex
	werr error
}

// Serve answers the requests to namespace/service with handler, running
// up to the responder's bound of them at once, until Close, ctx's end or
// the client's Close (see Service for lost streams).
func (c *Client) Serve(ctx context.Context, namespace, service string, handler Handler, opts ...ServeOption) (*Service, error) {
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	if f := c.ServerFlags(); f != 0 && f&wire.CapRequest == 0 {
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	s := &Service{c: c, namespace: namespace, service: service, cfg: cfg, done: make(chan struct{})}
	bctx, cancel := c.bind(ctx, true)
	defer cancel()
	ss, err := s.open(bctx)
	if err != nil {
		return nil, err
	}
	limit := int(cfg.maxInFlight)
	if limit == 0 || limit > wire.DefaultMaxInFlight {
		limit = wire.DefaultMaxInFlight
	}
	sctx, scancel := context.WithCancel(ctx)
	s.cancel = scancel
	stop := context.AfterFunc(c.ctx, scancel)
	beforeServeRun()
	if !c.goTracked(func() {
		defer stop()
		s.run(sctx, ss, handler, limit)
	}) {
		stop()
		scancel()
		ss.abort()
		close(ss.ended) // ends the stream's flusher, which Close waits for
		return nil, ErrClosed
	}
	return s, nil
}

// beforeServeRun runs as Serve starts serving its first stream (replaced
// in tests, to close the client right then).
var beforeServeRun = func() {}

// open opens a stream, asks the broker to serve on it and starts its
// writer.
func (s *Service) open(ctx context.Context) (*serveStream, error) {
	c := s.c
	s.slot = c.eventSlot(s.slot)
	as, err := c.openAuthedStream(ctx, s.slot, "serve", "")
	if err != nil {
		return nil, err
	}
	ss := &serveStream{str: as.str, r: as.r, ended: make(chan struct{})}
	if as.flags&wire.CapRequest == 0 {
		ss.abort()
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	m := &wire.Serve{TenantID: c.opts.TenantID, Namespace: s.namespace, Service: s.service}
	if s.cfg.maxInFlight > 0 {
		m.MaxInFlight = &s.cfg.maxInFlight
	}
	frame, err := wire.AppendMessageFrame(nil, m)
	if err == nil {
		err = writeAll(ctx, as.str, frame)
	}
	var reply wire.Message
	if err == nil {
		reply, err = readMessage(ctx, as.str.SetReadDeadline, as.r)
	}
	if err != nil {
		ss.abort()
		return nil, c.streamErr(ctx, "serve", err)
	}
	switch r := reply.(type) {
	case *wire.Serving:
	case *wire.ErrorMessage:
		ss.abort()
		return nil, refusal("serve", r.Message)
	default:
		ss.abort()
		return nil, &ProtocolError{Detail: fmt.Sprintf("unexpected %q in reply to serve", r.Type())}
	}
	ss.q = newWriteQueue(as.str, ss.ended, c.ctx.Done())
	if !c.goTracked(func() { ss.q.run(ss.writeFailed) }) {
		ss.abort()
		return nil, ErrClosed
	}
	return ss, nil
}

// abort cancels both directions of the stream.
func (ss *serveStream) abort() {
	abortStream(ss.str)
}

// run serves on ss, and on a new stream each time one is lost, until the
// service stops; at most limit handlers run at once over all its streams.
func (s *Service) run(ctx context.Context, ss *serveStream, h Handler, limit int) {
	defer close(s.done)
	c := s.c
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	defer wg.Wait()
	failures := 0
	for {
		opened := time.Now()
		served, err := ss.serve(ctx, c, h, sem, &wg)
		if ctx.Err() != nil {
			// Close, the caller's context or the client's Close.
			wg.Wait()
			ss.finish(c)
			s.err = nil
			if c.isClosed() {
				s.err = ErrClosed
			}
			return
		}
		ss.abort()
		close(ss.ended)
		err = c.streamErr(context.Background(), "serve", err)
		if c.opts.Reconnect.Disabled {
			s.err = err
			return
		}
		if served || time.Since(opened) >= c.opts.Reconnect.MaxBackoff {
			failures = 0 // a working stream: serve again at once
		}
		c.log.Debug("felix serve stream ended; serving again", "service", s.namespace+"/"+s.service, "err", err)
		if ss, failures, err = s.reopen(ctx, failures); err != nil {
			s.err = err
			if ctx.Err() != nil {
				s.err = nil
				if c.isClosed() {
					s.err = ErrClosed
				}
			}
			return
		}
	}
}

// reserveWait waits out a re-serve's backoff (replaced in tests).
var reserveWait = sleep

// reopen opens a new stream for the service with backoff until it
// succeeds, the broker refuses it or the service stops; failures counts
// the attempts before, carried over as resubscribe does.
func (s *Service) reopen(ctx context.Context, failures int) (*serveStream, int, error) {
	c := s.c
	for ; ; failures++ {
		if err := reserveWait(ctx, c.backoff(failures)); err != nil {
			return nil, failures, ctx.Err()
		}
		octx, cancel := c.bind(ctx, true)
		ss, err := s.open(octx)
		cancel()
		if err == nil {
			s.reserved.Add(1)
			c.log.Info("felix serving again", "service", s.namespace+"/"+s.service)
			return ss, failures + 1, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, failures, ErrClosed
		}
		if isServerReply(err) || errors.Is(err, ErrUnsupported) {
			return nil, failures, err // refused: serving again would not help
		}
	}
}

// serve reads requests from the stream and runs the handler for each
// (at most cap(sem) at once, wg counting them) until the stream or ctx
// ends; served says whether a request came.
func (ss *serveStream) serve(ctx context.Context, c *Client, h Handler, sem chan struct{}, wg *sync.WaitGroup) (served bool, err error) {
	for {
		var m wire.Message
		if m, err = readMessage(ctx, ss.str.SetReadDeadline, ss.r); err != nil {
			break
		}
		req, ok := m.(*wire.ServiceRequest)
		if !ok {
			err = &ProtocolError{Detail: fmt.Sprintf("unexpected %q on a serve stream", m.Type())}
			break
		}
		served = true
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out, herr := h(ctx, req.Payload)
			var ans wire.Message = &wire.ServiceReply{RequestID: req.RequestID, Payload: out}
			if herr != nil {
				ans = &wire.ServiceError{RequestID: req.RequestID, Message: herr.Error()}
			}
			// Queued even when the service is stopping (ctx ended): a
			// request its handler answered gets that answer, not
			// responder_gone. Only the client's or the stream's end
			// stops the write.
			ss.answer(c, req.RequestID, ans, len(sem) == 1)
		})
	}
	ss.wmu.Lock()
	if ss.werr != nil {
		err = ss.werr
	}
	ss.wmu.Unlock()
	return served, err
}

// finish ends a stopping service's stream once its handlers have
// answered: the answers are written, the send side closed, and, unless
// the client is closing, the broker's end awaited.
func (ss *serveStream) finish(c *Client) {
	_ = ss.q.closeWhenFlushed(c.ctx, ss.writable, ss.str.Close)
	if !c.isClosed() {
		// The answers just written are still in quic-go's buffers, and a
		// connection closed now (the caller's next step, often) would
		// discard them. The broker ends its side once it has read them
		// all (it answers what came after with responder_gone): read to
		// that end, bounded.
		dctx, cancel := context.WithTimeout(c.ctx, serveDrainTimeout)
		for {
			if _, err := readMessage(dctx, ss.str.SetReadDeadline, ss.r); err != nil {
				break
			}
		}
		cancel()
	}
	ss.str.CancelRead(streamCodeCancel)
	close(ss.ended)
}

// answer queues a handler's answer to request id (see writeQueue); alone
// says no other handler is running, so it may be written at once. Nothing
// is queued once the stream has failed or was given up.
func (ss *serveStream) answer(c *Client, id uint64, m wire.Message, alone bool) {
	q := ss.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waitRoom(c.ctx) != nil || !ss.writable() {
		return
	}
	select {
	case <-ss.ended:
		return
	default:
	}
	start := len(q.buf)
	var err error
	q.buf, err = wire.AppendMessageFrame(q.buf, m)
	if err == nil {
		err = c.checkFrame(q.buf[start:])
	}
	if err != nil {
		// The requester gets why instead of waiting for its timeout, and
		// the stream lives on (the broker would end it over a frame
		// larger than it reads).
		q.buf, _ = wire.AppendMessageFrame(q.buf[:start], &wire.ServiceError{RequestID: id,
			Message: fmt.Sprintf("answer not sent: %v", err)})
	}
	q.commit(start, alone)
}

// writable reports whether no write has failed.
func (ss *serveStream) writable() bool {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	return ss.werr == nil
}

// writeFailed ends the stream after a write failed (the flusher's report):
// its read loop then ends, with err.
func (ss *serveStream) writeFailed(err error) {
	ss.wmu.Lock()
	ss.werr = err
	ss.wmu.Unlock()
	ss.abort()
}

// serveDrainTimeout bounds how long a stopping Service waits for the
// broker to have read its last answers.
const serveDrainTimeout = 2 * time.Second

// Close stops serving: requests in flight to it fail with responder_gone
// at their requesters unless answered first. It waits for the handlers.
func (s *Service) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// Done is closed when the service has ended.
func (s *Service) Done() <-chan struct{} { return s.done }

// Err is why the service ended (nil after Close or ctx's end); valid once
// Done is closed.
func (s *Service) Err() error { return s.err }
