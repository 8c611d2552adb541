package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/wire"
)

// This file binds package service (request/reply routing) to streams:
// a `serve` turns a control stream into a responder, a `request` turns
// one into a requester stream (docs/protocol.md §6.7). Each such stream
// has one writer goroutine; requests have none of their own.

// services is the server's request/reply state: the registry and the
// requester of each connection that sent requests (all its request
// streams share its bound of pending requests).
type services struct {
	reg *service.Registry

	mu    sync.Mutex
	conns map[*conn]*connRequester
}

func newServices(o service.Options) *services {
	return &services{reg: service.New(o), conns: map[*conn]*connRequester{}}
}

// ServiceStats returns the request/reply counters.
func (s *Server) ServiceStats() service.Stats { return s.services.reg.Stats() }

// connRequester is a connection's requester. Requests are registered
// under tokens of the connection's own, mapped back to the stream and the
// client's request id (ids are per stream).
type connRequester struct {
	q       *service.Requester
	streams int // request streams using it

	// admit serializes the connection's requests from the check of the
	// bound to the request (see control.request): meanwhile no other
	// request of the connection takes a place, so a request found under
	// the bound is not refused for it.
	admit sync.Mutex

	mu    sync.Mutex
	next  uint64
	route map[uint64]routed
}

type routed struct {
	rs    *reqStream
	reqID uint64
}

// Result routes a result to its stream (service.Sink).
func (cr *connRequester) Result(token uint64, r service.Result) {
	cr.mu.Lock()
	to, ok := cr.route[token]
	delete(cr.route, token)
	cr.mu.Unlock()
	if !ok || !to.rs.push(to.reqID, r) {
		cr.q.Release(1) // the stream is gone: nobody to tell
	}
}

// requester returns c's requester, counting one more stream on it.
func (sv *services) requester(c *conn) *connRequester {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	cr := sv.conns[c]
	if cr == nil {
		cr = &connRequester{route: map[uint64]routed{}}
		cr.q = sv.reg.NewRequester(cr)
		sv.conns[c] = cr
	}
	cr.streams++
	return cr
}

// done ends one stream's use of c's requester; the last one closes it.
func (sv *services) done(c *conn, cr *connRequester) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if cr.streams--; cr.streams == 0 {
		delete(sv.conns, c)
		cr.q.Close()
	}
}

// serviceKey checks a serve or request's tenant and names and returns
// its key; msg is the refusal's text when not ok.
func (ctl *control) serviceKey(tenant, ns, name string) (service.Key, string) {
	if ctl.otherTenant(tenant) {
		return service.Key{}, "tenant mismatch"
	}
	if err := broker.ValidateName("namespace", ns); err != nil {
		return service.Key{}, err.Error()
	}
	if err := broker.ValidateName("service", name); err != nil {
		return service.Key{}, err.Error()
	}
	return service.Key{Tenant: tenant, Namespace: ns, Service: name}, ""
}

// serve makes the stream a responder until it or the connection ends.
func (ctl *control) serve(m *wire.Serve) error {
	c := ctl.c
	if ctl.peer&wire.CapRequest == 0 {
		return errNotNegotiated(m.Type())
	}
	k, msg := ctl.serviceKey(m.TenantID, m.Namespace, m.Service)
	if msg != "" {
		return ctl.fail(msg)
	}
	if !ctl.authorize(ActionSubscribe, StreamResource(k.Tenant, k.Namespace, k.Service)) {
		return ctl.fail("forbidden")
	}
	if err := c.s.tenants.acquireSub(ctl.id.use); err != nil {
		return ctl.fail(err.Error())
	}
	defer c.s.tenants.releaseSub(ctl.id.use)
	if c.s.draining.Load() {
		// As a subscribe or queue join read during the drain: the SDK
		// serves again on the restarted broker. (A responder taken now
		// would get no request: they are refused while the broker drains.)
		return ctl.fail(broker.ErrClosed.Error())
	}
	bound := c.s.services.reg.Bound(0)
	if m.MaxInFlight != nil {
		bound = c.s.services.reg.Bound(int(max(min(*m.MaxInFlight, 1<<20), 1)))
	}
	ctx, cancel := context.WithCancel(ctl.ctx)
	defer cancel()
	rs := &responder{ch: make(chan wire.ServiceRequest, bound), ctx: ctx}
	// Registered before serving is written: a request sent once the
	// client has read serving finds the responder (it waits in rs.ch,
	// which holds every request in flight, for the writer started below).
	sv := c.s.services.reg.Serve(k, rs, bound)
	defer sv.Close() // before the writer stops: requests in flight fail as responder_gone
	if err := ctl.reply(&wire.Serving{}); err != nil {
		return err
	}
	if err := ctl.flush(); err != nil {
		return err
	}
	c.s.busy.Add(-1) // a responder is not a request in progress
	defer c.s.busy.Add(1)
	// Only the writer writes from now on: through a writer that gives up
	// once a write makes no progress for the stall bound.
	w := &lockedWriter{w: wire.NewWriter(&stallWriter{s: ctl.bs, d: c.s.opts.ResponderStallTimeout})}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer cancel()
		if err := rs.write(w); err != nil {
			if errors.Is(err, errResponderStalled) {
				c.log.Debug("responder out of service: it stopped reading its stream", "service", k.String(), "err", err)
			}
			ctl.outOfService(sv)
		}
	}()
	err := ctl.serveLoop(sv)
	cancel()
	// The responder can answer nothing more: its requests in flight fail
	// now, not once a write blocked on it (it stopped reading) ends.
	sv.Close()
	<-writerDone
	return err
}

// DefaultResponderStallTimeout is Options.ResponderStallTimeout's default.
const DefaultResponderStallTimeout = 5 * time.Second

// errResponderStalled is why a responder's stream write ends when it made
// no progress for Options.ResponderStallTimeout.
var errResponderStalled = errors.New("responder stalled: the write of its requests made no progress")

// stallWriter writes to a responder's stream, failing a write that makes
// no progress (the responder does not read: QUIC flow control holds it)
// for d with errResponderStalled; d <= 0 is no bound. A write that makes
// progress, however slow, goes on.
type stallWriter struct {
	s interface {
		io.Writer
		SetWriteDeadline(time.Time) error
	}
	d time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if w.d <= 0 {
		return w.s.Write(p)
	}
	defer w.s.SetWriteDeadline(time.Time{})
	n := 0
	for {
		w.s.SetWriteDeadline(time.Now().Add(w.d))
		m, err := w.s.Write(p[n:])
		n += m
		switch {
		case err == nil || !errors.Is(err, os.ErrDeadlineExceeded):
			return n, err
		case m == 0:
			return n, fmt.Errorf("%w for %v (%d of %d bytes written)", errResponderStalled, w.d, n, len(p))
		}
	}
}

// responder is a serving stream's side of service.Responder: requests
// wait in ch (room for the registry's bound of requests in flight) for
// the stream's writer.
type responder struct {
	ch  chan wire.ServiceRequest
	ctx context.Context
}

func (r *responder) Send(id uint64, payload []byte) bool {
	if r.ctx.Err() != nil {
		return false
	}
	select {
	case r.ch <- wire.ServiceRequest{RequestID: id, Payload: payload}:
		return true
	default: // only a responder answering ids it was not sent
		return false
	}
}

// outOfService takes a responder whose stream write failed (it stopped
// reading: STOP_SENDING) or stalled (it stopped reading without saying so:
// see stallWriter) out of service at once, as if its stream had ended: the
// requests in flight to it fail as responder_gone now, not at their
// timeouts, it is sent no more, and its stream is reset both ways (its
// answers would have no request to match; a stalled write may have left
// a frame cut short).
func (ctl *control) outOfService(sv *service.Serving) {
	sv.Close()
	ctl.bs.CancelRead(codeNoErrorStream)
	ctl.bs.CancelWrite(codeNoErrorStream)
}

// write sends the requests, several per stream write when they queue up,
// until the responder's context ends (nil) or a write fails (its error).
func (r *responder) write(w *lockedWriter) error {
	var buf []byte
	for {
		select {
		case <-r.ctx.Done():
			return nil
		case m := <-r.ch:
			buf, _ = wire.AppendMessageFrame(buf[:0], &m)
		}
		for more := true; more; {
			select {
			case m := <-r.ch:
				buf, _ = wire.AppendMessageFrame(buf, &m)
			default:
				more = false
			}
		}
		if err := w.raw(buf); err != nil {
			return err
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// serveLoop reads a responder's answers until its stream ends.
func (ctl *control) serveLoop(sv *service.Serving) error {
	for {
		msg, err := ctl.readSession("serve stream")
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *wire.ServiceReply:
			sv.Reply(m.RequestID, m.Payload)
		case *wire.ServiceError:
			sv.Fail(m.RequestID, m.Message)
		default:
			return errUnexpected
		}
	}
}

var errUnexpected = &wire.DecodeError{What: "json message", Err: wire.ErrInvalidJSON, Detail: "unexpected message type on this stream"}

// reqStream is a requester stream: results wait in out for its writer.
type reqStream struct {
	cr     *connRequester
	maxLen int // the frame limit: a larger reply becomes too_large

	mu     sync.Mutex
	out    []wire.Message
	closed bool
	more   chan struct{} // capacity 1: out grew
	// writing is how many results the writer is writing, their places
	// still taken: a request that meets the bound meanwhile waits for
	// the write (see request).
	writing atomic.Int64
	// owed counts the requests accepted whose result is not written yet;
	// settled is closed once it is 0 after the requester's last request
	// (see drain).
	owed     int
	finished bool
	settled  chan struct{}
}

// owe adds n (negative: n results written or refused) to the results
// the stream owes.
func (rs *reqStream) owe(n int) {
	rs.mu.Lock()
	rs.owed += n
	if rs.finished && rs.owed <= 0 && rs.settled != nil {
		close(rs.settled)
		rs.settled = nil
	}
	rs.mu.Unlock()
}

// drain returns a channel closed once every request read has its result
// written: the requester sent its last one (it ended its send side).
func (rs *reqStream) drain() <-chan struct{} {
	ch := make(chan struct{})
	rs.mu.Lock()
	rs.finished, rs.settled = true, ch
	rs.mu.Unlock()
	rs.owe(0)
	return ch
}

// push queues a result for the stream; false when it has ended.
func (rs *reqStream) push(reqID uint64, r service.Result) bool {
	var m wire.Message
	switch r.Code {
	case "":
		m = &wire.Reply{RequestID: reqID, Payload: r.Payload}
	default:
		m = &wire.RequestError{RequestID: reqID, Code: r.Code, Message: r.Message}
	}
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return false
	}
	rs.out = append(rs.out, m)
	rs.mu.Unlock()
	select {
	case rs.more <- struct{}{}:
	default:
	}
	return true
}

// write sends the queued results until ctx ends or a write fails,
// releasing their places in the connection's bound once their write is
// done (or failed): a requester that does not read cannot make the broker
// hold more results than the bound, the batch being written included.
func (rs *reqStream) write(ctx context.Context, w *lockedWriter) {
	var buf []byte
	var batch []wire.Message
	for {
		select {
		case <-ctx.Done():
			return
		case <-rs.more:
		}
		rs.mu.Lock()
		batch, rs.out = rs.out, batch[:0]
		rs.mu.Unlock()
		buf = buf[:0]
		for _, m := range batch {
			buf = rs.appendResult(buf, m)
		}
		clear(batch)
		// The places are given back under the writer's lock, after the
		// write: a request that finds no place waits for the lock and
		// then tries (see request), so a requester that read
		// these results and sent another request never finds their
		// places still taken.
		n := len(batch)
		rs.writing.Store(int64(n))
		err := w.rawThen(buf, func() {
			rs.cr.q.Release(n)
			rs.writing.Store(0)
		})
		if err != nil {
			return
		}
		rs.owe(-len(batch))
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// appendResult appends m's frame, or a too_large error for the same
// request in its place when the result does not fit a frame.
func (rs *reqStream) appendResult(buf []byte, m wire.Message) []byte {
	at := len(buf)
	out, err := wire.AppendMessageFrame(buf, m)
	if err == nil && len(out)-at-wire.HeaderSize <= rs.maxLen {
		return out
	}
	var id uint64
	switch r := m.(type) {
	case *wire.Reply:
		id = r.RequestID
	case *wire.RequestError: // a responder's long message, plus the code
		id = r.RequestID
	}
	out, _ = wire.AppendMessageFrame(buf[:at], &wire.RequestError{RequestID: id, Code: wire.RequestCodeTooLarge,
		Message: fmt.Sprintf("reply larger than the frame limit (%d bytes)", rs.maxLen)})
	return out
}

// close ends the stream's results: those queued are dropped.
func (rs *reqStream) close() {
	rs.mu.Lock()
	rs.closed = true
	n := len(rs.out)
	rs.out = nil
	rs.mu.Unlock()
	rs.cr.q.Release(n)
}

// requests makes the stream a requester stream, starting with first: it
// serves request messages until the stream ends.
func (ctl *control) requests(first *wire.Request) error {
	c := ctl.c
	if ctl.peer&wire.CapRequest == 0 {
		return errNotNegotiated(first.Type())
	}
	if err := ctl.flush(); err != nil { // replies queued before go first
		return err
	}
	c.s.busy.Add(-1)
	defer c.s.busy.Add(1)
	cr := c.s.services.requester(c)
	defer c.s.services.done(c, cr)
	rs := &reqStream{cr: cr, maxLen: c.s.maxFrame(), more: make(chan struct{}, 1)}
	defer rs.close()
	w := &lockedWriter{w: ctl.w}
	ctx, cancel := context.WithCancel(ctl.ctx)
	defer cancel()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer cancel()
		rs.write(ctx, w)
	}()
	err := ctl.request(first, cr, rs, w)
	for err == nil {
		err = ctl.nextRequest(cr, rs, w)
	}
	if errors.Is(err, io.EOF) {
		// The requester sent its last request (FIN): it still gets the
		// result of each one read, at the latest their timeouts', unless
		// the connection or the token's validity ends first.
		select {
		case <-rs.drain():
		case <-ctx.Done():
		}
	}
	cancel()
	<-writerDone
	return err
}

func (ctl *control) nextRequest(cr *connRequester, rs *reqStream, w *lockedWriter) error {
	msg, err := ctl.readSession("request stream")
	if err != nil {
		return err
	}
	m, ok := msg.(*wire.Request)
	if !ok {
		return errUnexpected
	}
	return ctl.request(m, cr, rs, w)
}

// request routes one request; a refusal is answered at once.
func (ctl *control) request(m *wire.Request, cr *connRequester, rs *reqStream, w *lockedWriter) error {
	refuse := func(code, msg string) error {
		return w.message(&wire.RequestError{RequestID: m.RequestID, Code: code, Message: msg})
	}
	k, msg := ctl.serviceKey(m.TenantID, m.Namespace, m.Service)
	switch {
	case msg == "tenant mismatch":
		return refuse(wire.RequestCodeForbidden, msg)
	case msg != "":
		return refuse(wire.RequestCodeInvalid, msg)
	case !ctl.authorize(ActionPublish, StreamResource(k.Tenant, k.Namespace, k.Service)):
		return refuse(wire.RequestCodeForbidden, "forbidden")
	case ctl.c.s.draining.Load():
		// Not delivered, as no_responders promises; those in flight are
		// answered before the connections close (Shutdown).
		return refuse(wire.RequestCodeNoResponders, "broker shutting down")
	}
	timeout := time.Duration(0)
	if m.TimeoutMs != nil {
		timeout = time.Duration(min(*m.TimeoutMs, wire.MaxRequestTimeoutMs)) * time.Millisecond
		if timeout == 0 {
			timeout = time.Nanosecond // 0 ms: answered or timed out at once, not the default
		}
	}
	cr.mu.Lock()
	cr.next++
	token := cr.next
	cr.route[token] = routed{rs: rs, reqID: m.RequestID}
	cr.mu.Unlock()
	rs.owe(1)
	writing := rs.writing.Load() > 0 // read first: a write ending meanwhile clears it
	cr.admit.Lock()
	if cr.q.Full() && (writing || rs.writing.Load() > 0) {
		// Results of this stream in a write hold their places until the
		// write is done: wait for it (a requester that does not read its
		// results waits here, as its refusal would wait to be written)
		// and then try. Checked before trying, not tried twice: the
		// registry counts every refusal (felix_service_limited_total),
		// and a request is refused once or not at all.
		cr.admit.Unlock()
		w.wait()
		cr.admit.Lock()
	}
	err := cr.q.Request(token, k, m.Payload, timeout)
	cr.admit.Unlock()
	if err != nil {
		rs.owe(-1)
		cr.mu.Lock()
		delete(cr.route, token)
		cr.mu.Unlock()
		e := err.(*service.Error)
		return refuse(e.Code, e.Message)
	}
	return nil
}

// maxFrame is the frame limit the server reads with.
func (s *Server) maxFrame() int {
	if s.opts.MaxFrameBytes > 0 {
		return s.opts.MaxFrameBytes
	}
	return wire.DefaultMaxFrameBytes
}

// readSession reads the next JSON message of a responder or requester
// stream; nothing read at or after the token's expiry is served.
func (ctl *control) readSession(what string) (wire.Message, error) {
	f, err := ctl.r.ReadFrame()
	if err != nil {
		return nil, err
	}
	if ctl.expired() {
		return nil, errTokenExpired
	}
	if f.Flags != 0 {
		return nil, &wire.DecodeError{What: what, Err: wire.ErrWrongFlags, Detail: fmt.Sprintf("flags %#04x", f.Flags)}
	}
	return wire.DecodeMessage(f.Payload)
}
