package client

import (
	"context"
	"fmt"
	"sync"
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

// Service is a running responder (Serve). It does not re-serve after a
// lost connection: it ends, Done closes and Err says why; serve again.
type Service struct {
	str    *quic.Stream
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	wmu    sync.Mutex
}

// Serve answers the requests to namespace/service with handler, running
// up to the responder's bound of them at once, until Close, ctx's end or
// the loss of its stream.
func (c *Client) Serve(ctx context.Context, namespace, service string, handler Handler, opts ...ServeOption) (*Service, error) {
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	if f := c.ServerFlags(); f != 0 && f&wire.CapRequest == 0 {
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	bctx, cancel := c.bind(ctx, true)
	defer cancel()
	slot := c.eventSlots[c.nextEvent.Add(1)%uint64(len(c.eventSlots))]
	as, err := c.openAuthedStream(bctx, slot, "serve", "")
	if err != nil {
		return nil, err
	}
	abort := func() {
		as.str.CancelRead(streamCodeCancel)
		as.str.CancelWrite(streamCodeCancel)
	}
	if as.flags&wire.CapRequest == 0 {
		abort()
		return nil, fmt.Errorf("felix: broker does not offer request/reply: %w", ErrUnsupported)
	}
	m := &wire.Serve{TenantID: c.opts.TenantID, Namespace: namespace, Service: service}
	if cfg.maxInFlight > 0 {
		m.MaxInFlight = &cfg.maxInFlight
	}
	frame, err := wire.AppendMessageFrame(nil, m)
	if err == nil {
		err = writeAll(bctx, as.str, frame)
	}
	var reply wire.Message
	if err == nil {
		reply, err = readMessage(bctx, as.str.SetReadDeadline, as.r)
	}
	if err != nil {
		abort()
		return nil, c.streamErr(bctx, "serve", err)
	}
	switch r := reply.(type) {
	case *wire.Serving:
	case *wire.ErrorMessage:
		abort()
		return nil, &ServerError{Message: r.Message}
	default:
		abort()
		return nil, &ProtocolError{Detail: fmt.Sprintf("unexpected %q in reply to serve", r.Type())}
	}
	limit := int(cfg.maxInFlight)
	if limit == 0 || limit > wire.DefaultMaxInFlight {
		limit = wire.DefaultMaxInFlight
	}
	sctx, scancel := context.WithCancel(ctx)
	s := &Service{str: as.str, cancel: scancel, done: make(chan struct{})}
	stop := context.AfterFunc(c.ctx, scancel)
	if !c.goTracked(func() {
		defer stop()
		s.run(sctx, c, as.r, handler, limit)
	}) {
		scancel()
		abort()
		return nil, ErrClosed
	}
	return s, nil
}

// run reads requests and runs the handler for each, at most limit at once.
func (s *Service) run(ctx context.Context, c *Client, r *wire.Reader, h Handler, limit int) {
	defer close(s.done)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var err error
	for {
		var m wire.Message
		if m, err = readMessage(ctx, s.str.SetReadDeadline, r); err != nil {
			break
		}
		req, ok := m.(*wire.ServiceRequest)
		if !ok {
			err = &ProtocolError{Detail: fmt.Sprintf("unexpected %q on a serve stream", m.Type())}
			break
		}
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
			b, _ := wire.AppendMessageFrame(nil, ans)
			// Written even when the service is stopping (ctx ended): a
			// request its handler answered gets that answer, not
			// responder_gone. Only the client's end stops the write.
			s.wmu.Lock()
			_ = writeAll(c.ctx, s.str, b)
			s.wmu.Unlock()
		})
	}
	wg.Wait()
	s.wmu.Lock()
	s.str.Close()
	s.wmu.Unlock()
	if ctx.Err() != nil && !c.isClosed() {
		// Stopping: the answers just written are still in quic-go's
		// buffers, and a connection closed now (the caller's next step,
		// often) would discard them. The broker ends its side once it has
		// read them all (it answers what came after with responder_gone):
		// read to that end, bounded.
		dctx, cancel := context.WithTimeout(c.ctx, serveDrainTimeout)
		for {
			if _, err := readMessage(dctx, s.str.SetReadDeadline, r); err != nil {
				break
			}
		}
		cancel()
	}
	s.str.CancelRead(streamCodeCancel)
	if ctx.Err() != nil {
		err = nil // Close or the caller's context
		if c.isClosed() {
			err = ErrClosed
		}
	} else {
		err = c.streamErr(context.Background(), "serve", err)
	}
	s.err = err
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
