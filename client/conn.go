package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// Application error code the client closes connections and cancels
// streams with.
const (
	codeClientClosed quic.ApplicationErrorCode = 0
	streamCodeCancel quic.StreamErrorCode      = 0
)

// abortStream cancels both directions of str (code streamCodeCancel).
func abortStream(str *quic.Stream) {
	str.CancelRead(streamCodeCancel)
	str.CancelWrite(streamCodeCancel)
}

// connSlot is one pooled QUIC connection that is redialed on demand
// (with backoff) after it is lost.
type connSlot struct {
	c      *Client
	kind   string // ConnKindPublish, ConnKindEvent or ConnKindCache
	index  int
	events bool // start an event router on each connection
	dial   gate // held while dialing

	mu   sync.Mutex
	cur  *slotConn
	ever bool // a connection was established once
	// lost is the connection whose loss was reported (OnDisconnect) and
	// not yet made good by a new one (OnReconnect); nil when none is.
	lost *slotConn
	// lostQueued: the loss of lost was queued for OnDisconnect, so its
	// reconnect goes to OnReconnect (see notifyLost).
	lostQueued bool
	failures   int       // consecutive failed dials
	lastFail   time.Time // when the last dial failed
}

// slotConn is one live connection of a slot.
type slotConn struct {
	conn   *quic.Conn
	router *router // event slots only
	// seq numbers the client's connections in the order they were
	// established; checked is the highest probe round bound (see
	// resetprobe.go) this one answered.
	seq     uint64
	checked atomic.Uint64
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
	if s.c.isClosed() { // no dial on the closed transport
		return nil, ErrClosed
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
	ever, failures, lastFail, prev := s.ever, s.failures, s.lastFail, s.cur
	s.mu.Unlock()
	// A connection the broker closed because no stream authenticated on
	// it carried nothing (an event connection dialed at Dial and not used
	// within the broker's auth timeout): dialing a new one loses nothing,
	// so it is not a reconnection, even when reconnection is disabled.
	unused := prev != nil && closedUnauthenticated(prev.conn)
	if unused {
		s.c.log.Debug("felix: broker closed a connection before its first use; dialing a new one", "conn", s.kind, "index", s.index,
			"reason", context.Cause(prev.conn.Context()))
	} else if ever {
		if s.c.isClosed() { // Close closed it: not a loss
			return nil, ErrClosed
		}
		s.reportLost(prev)
		if s.c.opts.Reconnect.Disabled {
			return nil, &ConnectionError{Op: s.kind + " connection", Err: errNoReconnect}
		}
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
		// Close may have closed the transport under the dial before ctx
		// (bound to the client by an AfterFunc, which runs on a goroutine
		// of its own) is cancelled: that is the client's end, not a lost
		// connection.
		if ctx.Err() != nil || s.c.isClosed() {
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

// closedUnauthenticated reports whether the broker closed conn because no
// stream authenticated on it within its auth timeout: code 0 with the
// reason "no stream authenticated within <timeout> (auth timeout)"
// (wire.ConnAuthTimeout). The broker never closes a connection so
// once a stream has authenticated on it.
func closedUnauthenticated(conn *quic.Conn) bool {
	return isAuthTimeoutClose(context.Cause(conn.Context()))
}

// isAuthTimeoutClose reports whether err is (or wraps) the broker's close
// of a connection under its auth rule (see closedUnauthenticated).
func isAuthTimeoutClose(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0 &&
		strings.HasSuffix(ae.ErrorMessage, wire.ConnAuthTimeout)
}

// install makes conn the slot's connection and starts its router; when
// it replaces a connection whose loss get reported, that is a
// reconnection (logged, and reported to OnReconnect).
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
	if s.lost != nil { // get reported the loss of the connection this replaces
		s.c.log.Info("felix reconnected", "conn", s.kind, "index", s.index, "after_failures", s.failures)
		s.lost = nil
		s.c.notifyBack(ConnEvent{Kind: s.kind, Index: s.index, Addr: s.c.addr, FailedDials: s.failures}, s.lostQueued)
		s.lostQueued = false
	}
	s.cur, s.ever, s.failures = sc, true, 0
	s.c.watchReset(sc)
	return sc, nil
}

// reportLost reports the loss of the slot's connection sc (OnDisconnect),
// once, as the slot is about to redial it. The client notices a loss when
// something needs the connection again: at once for one that carried
// subscriptions, consumers or services (they re-establish themselves on
// it, see pickSlot), at the next call for publish and cache connections.
// Connections the client closed itself and those the broker closed unused
// (closedUnauthenticated) are not losses and never get here.
func (s *connSlot) reportLost(sc *slotConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost == sc {
		return
	}
	s.lost = sc
	cause := context.Cause(sc.conn.Context())
	s.c.log.Debug("felix connection lost; redialing", "conn", s.kind, "index", s.index, "err", cause)
	s.lostQueued = s.c.notifyLost(ConnEvent{Kind: s.kind, Index: s.index, Addr: s.c.addr, Err: cause})
}

// pickSlot returns the slot for a new stream of something that was on
// prev: prev again, so that a subscription, consumer or service whose
// stream or connection was lost comes back on its own connection,
// redialing that one (OnDisconnect and OnReconnect then tell one story
// per connection, and a broker that ends streams while it drains does not
// get the other connections of the pool dialed to it); for something new
// (prev nil), the next of slots round-robin.
func pickSlot(slots []*connSlot, next *atomic.Uint64, prev *connSlot) *connSlot {
	if prev != nil {
		return prev
	}
	return slots[next.Add(1)%uint64(len(slots))]
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
