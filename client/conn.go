package client

import (
	"context"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Application error code the client closes connections and cancels
// streams with.
const (
	codeClientClosed quic.ApplicationErrorCode = 0
	streamCodeCancel quic.StreamErrorCode      = 0
)

// connSlot is one pooled QUIC connection that is redialed on demand
// (with backoff) after it is lost.
type connSlot struct {
	c      *Client
	kind   string // "publish" or "event", for logs
	index  int
	events bool // start an event router on each connection
	dial   gate // held while dialing

	mu       sync.Mutex
	cur      *slotConn
	ever     bool      // a connection was established once
	failures int       // consecutive failed dials
	lastFail time.Time // when the last dial failed
}

// slotConn is one live connection of a slot.
type slotConn struct {
	conn   *quic.Conn
	router *router // event slots only
}

func newConnSlot(c *Client, kind string, index int, events bool) *connSlot {
	return &connSlot{c: c, kind: kind, index: index, events: events, dial: newGate()}
}

func (sc *slotConn) alive() bool { return sc != nil && sc.conn.Context().Err() == nil }

// current returns the live connection, or nil.
func (s *connSlot) current() *slotConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.alive() {
		return s.cur
	}
	return nil
}

// get returns the slot's live connection, dialing one if needed. Dials are
// serialized per slot and spaced by the reconnect backoff.
func (s *connSlot) get(ctx context.Context) (*slotConn, error) {
	if sc := s.current(); sc != nil {
		return sc, nil
	}
	ctx, cancel := s.c.bind(ctx, false)
	defer cancel()
	if !s.dial.enter(ctx) {
		return nil, s.c.ctxErr(ctx)
	}
	defer s.dial.leave()
	if sc := s.current(); sc != nil { // another caller dialed meanwhile
		return sc, nil
	}
	s.mu.Lock()
	ever, failures, lastFail := s.ever, s.failures, s.lastFail
	s.mu.Unlock()
	if ever && s.c.opts.Reconnect.Disabled {
		return nil, &ConnectionError{Op: s.kind + " connection", Err: errNoReconnect}
	}
	if wait := time.Until(lastFail.Add(s.c.backoff(failures))); wait > 0 {
		if err := sleep(ctx, wait); err != nil {
			return nil, s.c.ctxErr(ctx)
		}
	}
	var idle time.Duration
	if s.events {
		idle = s.c.opts.EventIdleTimeout
	}
	conn, err := s.c.tr.DialIdle(ctx, s.c.addr, s.c.tls, idle)
	if err != nil {
		if ctx.Err() != nil {
			return nil, s.c.ctxErr(ctx)
		}
		s.mu.Lock()
		s.failures++
		s.lastFail = time.Now()
		n := s.failures
		s.mu.Unlock()
		s.c.log.Debug("felix dial failed", "conn", s.kind, "index", s.index, "failures", n, "err", err)
		return nil, &ConnectionError{Op: "dial", Err: err}
	}
	return s.install(conn)
}

// install makes conn the slot's connection and starts its router.
func (s *connSlot) install(conn *quic.Conn) (*slotConn, error) {
	sc := &slotConn{conn: conn}
	if s.events {
		sc.router = newRouter(s.c, conn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c.isClosed() {
		_ = conn.CloseWithError(codeClientClosed, "client closed")
		return nil, ErrClosed
	}
	if sc.router != nil && !s.c.goTracked(sc.router.run) {
		_ = conn.CloseWithError(codeClientClosed, "client closed")
		return nil, ErrClosed
	}
	if s.ever {
		s.c.log.Info("felix reconnected", "conn", s.kind, "index", s.index, "after_failures", s.failures)
	}
	s.cur, s.ever, s.failures = sc, true, 0
	return sc, nil
}

// close closes the slot's connection (client shutdown).
func (s *connSlot) close() {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		_ = cur.conn.CloseWithError(codeClientClosed, "client closed")
	}
}

// gate is a mutex whose acquisition can be abandoned when a context ends.
type gate chan struct{}

func newGate() gate { return make(gate, 1) }

// enter acquires the gate, or reports false when ctx ends first.
func (g gate) enter(ctx context.Context) bool {
	select {
	case g <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g gate) leave() { <-g }
