package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	mu   sync.Mutex
	cur  *reqConn
	next uint64
}

type reqConn struct {
	str *quic.Stream
	// q coalesces the request frames of concurrent callers into shared
	// stream writes (and packets); its flusher ends with done.
	q    *writeQueue
	done chan struct{} // closed when the stream failed
	mu   sync.Mutex
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
	rc, err := c.reqConn(ctx)
	if err != nil {
		return nil, err
	}
	m := &wire.Request{TenantID: c.opts.TenantID, Namespace: namespace, Service: service, Payload: payload}
	if d, ok := ctx.Deadline(); ok {
		m.TimeoutMs = wire.U64(uint64(max(time.Until(d).Milliseconds(), 1)))
	}
	ch := make(chan reqAnswer, 1)
	c.rq.mu.Lock()
	c.rq.next++
	m.RequestID = c.rq.next
	c.rq.mu.Unlock()
	rc.mu.Lock()
	if rc.wait == nil {
		err := rc.err
		rc.mu.Unlock()
		return nil, err
	}
	rc.wait[m.RequestID] = ch
	alone := len(rc.wait) == 1
	rc.mu.Unlock()
	forget := func() {
		rc.mu.Lock()
		if rc.wait != nil {
			delete(rc.wait, m.RequestID)
		}
		rc.mu.Unlock()
	}
	frame, err := wire.AppendMessageFrame(nil, m)
	if err == nil {
		err = c.checkFrame(frame)
	}
	if err == nil {
		err = rc.write(ctx, frame, alone)
	}
	if err != nil {
		forget()
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

// reqConn returns the requester stream, opening it if needed.
func (c *Client) reqConn(ctx context.Context) (*reqConn, error) {
	c.rq.mu.Lock()
	defer c.rq.mu.Unlock()
	if rc := c.rq.cur; rc != nil {
		rc.mu.Lock()
		ok := rc.wait != nil
		rc.mu.Unlock()
		if ok {
			return rc, nil
		}
	}
	bctx, cancel := c.bind(ctx, true)
	defer cancel()
	slot := c.cacheSlots[c.nextCache.Add(1)%uint64(len(c.cacheSlots))]
	as, err := c.openAuthedStream(bctx, slot, "request", "")
	if err != nil {
		return nil, err
	}
	if as.flags&wire.CapRequest == 0 {
		as.str.CancelRead(streamCodeCancel)
		as.str.CancelWrite(streamCodeCancel)
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	rc := &reqConn{str: as.str, wait: map[uint64]chan reqAnswer{}, done: make(chan struct{})}
	rc.q = newWriteQueue(as.str, rc.done, c.ctx.Done())
	flush := func() {
		rc.q.run(func(err error) {
			rc.fail(c.streamErr(context.Background(), "request", err))
			rc.str.CancelRead(streamCodeCancel)
			rc.str.CancelWrite(streamCodeCancel)
		})
	}
	if !c.goTracked(func() { rc.read(c, as.r) }) || !c.goTracked(flush) {
		rc.fail(ErrClosed)
		as.str.CancelRead(streamCodeCancel)
		as.str.CancelWrite(streamCodeCancel)
		return nil, ErrClosed
	}
	c.rq.cur = rc
	return rc, nil
}

// read hands replies to their requests until the stream ends.
func (rc *reqConn) read(c *Client, r *wire.Reader) {
	stop := context.AfterFunc(c.ctx, func() {
		rc.str.CancelRead(streamCodeCancel)
		rc.str.CancelWrite(streamCodeCancel)
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
			rc.str.CancelRead(streamCodeCancel)
			rc.str.CancelWrite(streamCodeCancel)
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
	for _, ch := range wait {
		ch <- reqAnswer{err: err}
	}
}
