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

// Request/reply (NATS request/reply; the broker's request extension,
// docs/protocol.md §6.7): Request asks a service, Serve answers one.

var (
	// ErrNoResponders: nobody serves the service, or every responder is at
	// its bound of requests in flight. The request was not delivered.
	ErrNoResponders = errors.New("felix: no responders")
	// ErrRequestTimeout: no reply within the timeout (the context's
	// deadline, or the broker's default). The responder may still run it.
	ErrRequestTimeout = errors.New("felix: request timed out")
)

// ResponderError is a responder's own failure (its handler's error).
type ResponderError struct{ Message string }

func (e *ResponderError) Error() string { return "felix: responder error: " + e.Message }

// requests is a client's requester stream, opened at the first Request
// and again after it failed.
type requests struct {
	mu  sync.Mutex
	cur *reqConn
	// opening is closed when the open under way ends; nil when none is.
	// One Request opens the stream, without mu; the others wait for it
	// by their own contexts.
	opening chan struct{}
	next    atomic.Uint64 // request ids
	// slot is the cache connection's slot of the requester streams: a
	// new one goes there too (pickSlot).
	slot atomic.Pointer[connSlot]
}

type reqConn struct {
	str *quic.Stream
	// q coalesces the request frames of concurrent callers into shared
	// stream writes (and packets); its flusher ends with done.
	q    *writeQueue
	done chan struct{} // closed when the stream failed or ended
	// Token rotation (rotate.go): life is the validity of the stream's
	// token; a rotation opens a new stream and retires this one, which
	// takes no request from then on (set under q.mu) and ends once the
	// broker has answered those it carries.
	life     tokenLife
	rot      rotation
	retiring atomic.Bool
	mu       sync.Mutex
	// wait holds the requests in flight; nil once the stream failed.
	wait map[uint64]chan reqAnswer
	err  error
}

// reqAnswer is a request's reply, or the failure of its stream.
type reqAnswer struct {
	m   wire.Message
	err error
}

// Request sends payload to a responder of namespace/service and returns
// its reply. The timeout is ctx's deadline, else the broker's default
// (5s); the broker caps it at 60s. Failures: ErrNoResponders,
// ErrRequestTimeout, a *ResponderError, a *ServerError (code forbidden,
// too_large, limit, invalid, responder_gone), ErrUnsupported, or a
// *ConnectionError.
func (c *Client) Request(ctx context.Context, namespace, service string, payload []byte) ([]byte, error) {
	if f := c.ServerFlags(); f != 0 && f&wire.CapRequest == 0 {
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	m := &wire.Request{TenantID: c.opts.TenantID, Namespace: namespace, Service: service, Payload: payload}
	if d, ok := ctx.Deadline(); ok {
		m.TimeoutMs = wire.U64(uint64(max(time.Until(d).Milliseconds(), 1)))
	}
	m.RequestID = c.rq.next.Add(1)
	frame, err := wire.AppendMessageFrame(nil, m)
	if err == nil {
		err = c.checkFrame(frame)
	}
	if err != nil {
		return nil, err
	}
	var (
		ch chan reqAnswer
		rc *reqConn
	)
	forget := func() {
		rc.mu.Lock()
		if rc.wait != nil {
			delete(rc.wait, m.RequestID)
		}
		rc.mu.Unlock()
	}
	for {
		if rc, err = c.reqConn(ctx); err != nil {
			if err == context.DeadlineExceeded { // it passed while the stream was opened
				err = requestCtxErr(err)
			}
			return nil, err
		}
		rc.mu.Lock()
		if rc.wait == nil {
			err := rc.err
			rc.mu.Unlock()
			return nil, err
		}
		// A channel per attempt: a stream given up for a retry may still
		// answer the old one (its failure ends every request it holds).
		ch = make(chan reqAnswer, 1)
		rc.wait[m.RequestID] = ch
		alone := len(rc.wait) == 1
		rc.mu.Unlock()
		requestHook(rc, nil)
		err = rc.write(ctx, frame, alone)
		if err == nil {
			break
		}
		requestHook(rc, err)
		forget()
		if errors.Is(err, errRetired) {
			continue // a token rotation replaced the stream: take the new one
		}
		if err == ctx.Err() { // its deadline passed while it waited for room
			err = requestCtxErr(err)
		}
		return nil, err
	}
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, a.err
		}
		return requestResult(a.m)
	case <-ctx.Done():
		forget()
		return nil, requestCtxErr(ctx.Err())
	case <-c.ctx.Done():
		forget()
		return nil, ErrClosed
	}
}

// requestHook, set by tests, runs with a nil err when a request is about
// to be written on rc, and with the write's error when it failed (before
// the request is taken off rc).
var requestHook = func(rc *reqConn, err error) {}

// requestCtxErr is Request's error when its context ended: a deadline
// is the request's timeout.
func requestCtxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrRequestTimeout, err)
	}
	return err
}

// requestError is the broker's own words for a failure that errors.Is
// matches to a sentinel (ErrNoResponders, ErrRequestTimeout).
type requestError struct {
	msg string
	is  error
}

func (e *requestError) Error() string { return "felix: " + e.msg }
func (e *requestError) Unwrap() error { return e.is }

// requestResult maps a reply or request_error to Request's result.
func requestResult(m wire.Message) ([]byte, error) {
	switch m := m.(type) {
	case *wire.Reply:
		return m.Payload, nil
	case *wire.RequestError:
		switch m.Code {
		case wire.RequestCodeNoResponders:
			return nil, &requestError{msg: m.Message, is: ErrNoResponders}
		case wire.RequestCodeTimeout:
			return nil, &requestError{msg: m.Message, is: ErrRequestTimeout}
		case wire.RequestCodeResponderError:
			return nil, &ResponderError{Message: m.Message}
		}
		return nil, &ServerError{Code: m.Code, Message: m.Message}
	}
	return nil, &ProtocolError{Detail: fmt.Sprintf("unexpected %q on a request stream", m.Type())}
}

// reqConn returns the requester stream, opening it if needed. While
// another caller opens it, it waits for that open, bounded by ctx: the
// open lasts as long as the opener's context allows.
func (c *Client) reqConn(ctx context.Context) (*reqConn, error) {
	c.rq.mu.Lock()
	rc := c.liveReqConnLocked()
	c.rq.mu.Unlock()
	if rc != nil {
		return rc, nil // the usual case: no bound context (a timer) needed
	}
	bctx, cancel := c.bind(ctx, true)
	defer cancel()
	for {
		c.rq.mu.Lock()
		if rc := c.liveReqConnLocked(); rc != nil {
			c.rq.mu.Unlock()
			return rc, nil
		}
		if opening := c.rq.opening; opening != nil {
			c.rq.mu.Unlock()
			select {
			case <-opening: // opened, or failed: look again
				continue
			case <-bctx.Done():
				return nil, c.ctxErr(bctx)
			}
		}
		done := make(chan struct{})
		c.rq.opening = done
		c.rq.mu.Unlock()
		rc, err := c.openReqConn(bctx, "")
		c.rq.mu.Lock()
		c.rq.opening = nil
		close(done)
		if err == nil {
			c.useReqConn(rc)
		}
		c.rq.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return rc, nil
	}
}

// liveReqConnLocked returns the requester stream if it takes requests
// (nil otherwise). The caller holds c.rq.mu.
func (c *Client) liveReqConnLocked() *reqConn {
	rc := c.rq.cur
	if rc == nil {
		return nil
	}
	rc.mu.Lock()
	ok := rc.wait != nil && !rc.retiring.Load()
	rc.mu.Unlock()
	if !ok {
		return nil
	}
	return rc
}

// useReqConn makes rc the client's requester stream and schedules its
// rotation; c.rq.mu is held.
func (c *Client) useReqConn(rc *reqConn) {
	c.rq.cur = rc
	d, ok := sessionRotateDelay(time.Now(), rc.life)
	rc.rot.schedule(c, d, ok, func() { c.rotateRequests(rc) })
}

// openReqConn opens a requester stream authenticated with token (empty:
// c.token's) and starts its reader and writer.
func (c *Client) openReqConn(ctx context.Context, token string) (*reqConn, error) {
	slot := pickSlot(c.cacheSlots, &c.nextCache, c.rq.slot.Load())
	c.rq.slot.Store(slot)
	as, err := c.openAuthedStream(ctx, slot, "request", token)
	if err != nil {
		return nil, err
	}
	if as.flags&wire.CapRequest == 0 {
		abortStream(as.str)
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	rc := &reqConn{str: as.str, wait: map[uint64]chan reqAnswer{}, done: make(chan struct{}), life: as.life}
	rc.q = newWriteQueue(as.str, rc.done, c.ctx.Done())
	flush := func() {
		rc.q.run(func(err error) {
			rc.fail(c.streamErr(context.Background(), "request", err))
			abortStream(rc.str)
		})
	}
	if !c.goTracked(func() { rc.read(c, as.r) }) || !c.goTracked(flush) {
		rc.fail(ErrClosed)
		abortStream(as.str)
		return nil, ErrClosed
	}
	return rc, nil
}

// errRetired: the requester stream was replaced by a token rotation
// before the request was queued on it; the request goes to the new one.
var errRetired = errors.New("request stream retired")

// rotateRequests moves requests from old to a stream authenticated with a
// fresh token before old's token expires (rotate.go): new requests go to
// the new stream at once; old finishes its send side and ends once the
// broker has answered every request on it.
func (c *Client) rotateRequests(old *reqConn) {
	ctx, cancel := c.rotateCtx()
	defer cancel()
	live := func() bool { return c.rq.cur == old && old.alive() }
	err := func() error {
		// Requests go on meanwhile (on old): the token source and the
		// new stream's handshake are waited for without c.rq.mu.
		c.rq.mu.Lock()
		ok := live()
		c.rq.mu.Unlock()
		if !ok {
			return nil
		}
		token, err := c.freshToken(ctx, old.life.exp)
		if err != nil {
			return err
		}
		rc, err := c.openReqConn(ctx, token)
		if err != nil {
			return err
		}
		c.rq.mu.Lock()
		defer c.rq.mu.Unlock()
		if !live() { // old failed meanwhile: the next Request opens one
			rc.fail(ErrClosed)
			abortStream(rc.str)
			return nil
		}
		c.useReqConn(rc)
		old.q.mu.Lock()
		old.retiring.Store(true)
		old.q.mu.Unlock()
		return nil
	}()
	if err != nil {
		c.logRotation("request", old.life.exp, err)
		old.rot.retry(c, old.life.exp, func() { c.rotateRequests(old) })
		return
	}
	if !old.retiring.Load() {
		return // old is no longer the client's stream
	}
	c.logRotation("request", old.life.exp, nil)
	old.rot.stop()
	if err := endStream(ctx, old.q, old.alive, old.str.Close, old.done); err != nil && old.alive() {
		old.fail(retireErr("request", err))
		abortStream(old.str)
	}
}

// alive reports whether the stream has neither failed nor ended.
func (rc *reqConn) alive() bool {
	select {
	case <-rc.done:
		return false
	default:
		return true
	}
}

// read hands replies to their requests until the stream ends.
func (rc *reqConn) read(c *Client, r *wire.Reader) {
	stop := context.AfterFunc(c.ctx, func() {
		abortStream(rc.str)
	})
	defer stop()
	for {
		m, err := readMessage(context.Background(), rc.str.SetReadDeadline, r)
		if err != nil {
			rc.fail(c.streamErr(context.Background(), "request", err))
			return
		}
		var id uint64
		switch m := m.(type) {
		case *wire.Reply:
			id = m.RequestID
		case *wire.RequestError:
			id = m.RequestID
		default:
			rc.fail(&ProtocolError{Detail: fmt.Sprintf("unexpected %q on a request stream", m.Type())})
			abortStream(rc.str)
			return
		}
		rc.mu.Lock()
		ch := rc.wait[id]
		delete(rc.wait, id)
		rc.mu.Unlock()
		if ch != nil {
			ch <- reqAnswer{m: m}
		}
	}
}

// write queues one request frame (see writeQueue): frames of concurrent
// requests share stream writes and packets; a request alone in flight is
// written at once. A write that fails later fails the stream, and every
// request in flight gets the error.
func (rc *reqConn) write(ctx context.Context, frame []byte, alone bool) error {
	q := rc.q
	q.mu.Lock()
	defer q.mu.Unlock()
	err := q.waitRoom(ctx)
	if err == nil {
		select {
		case <-rc.done:
			err = errSessionGone
		default:
		}
	}
	if errors.Is(err, errSessionGone) {
		rc.mu.Lock()
		err = rc.err
		rc.mu.Unlock()
	}
	if err == nil && rc.retiring.Load() {
		err = errRetired
	}
	if err != nil {
		return err
	}
	start := len(q.buf)
	q.buf = append(q.buf, frame...)
	q.commit(start, alone)
	return nil
}

// fail ends the requests in flight with err (the first failure's); the
// next Request opens a new stream.
func (rc *reqConn) fail(err error) {
	rc.mu.Lock()
	wait := rc.wait
	if wait == nil {
		rc.mu.Unlock()
		return
	}
	rc.wait, rc.err = nil, err
	close(rc.done)
	rc.mu.Unlock()
	rc.rot.stop()
	for _, ch := range wait {
		ch <- reqAnswer{err: err}
	}
}
