package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/wire"
)

// conn is one client connection.
type conn struct {
	s    *Server
	qc   *quic.Conn
	log  *slog.Logger
	subs int64 // live subscriptions; guarded by atomic ops through subCount

	tmu     sync.Mutex
	tenants map[string]*tenantUse // tenants this connection counts against
	ended   bool                  // releaseTenants ran: count nothing more

	// subIDs are the ids of this connection's live subscriptions. The
	// client pairs each event stream with its subscription by id alone, so
	// an id names at most one live subscription per connection.
	smu    sync.Mutex
	subIDs map[uint64]struct{}

	// authState says whether a stream of the connection has
	// authenticated (authDone) or the connection is past its auth
	// deadline (authExpired); authTimer enforces the deadline (see
	// authDeadline). authTimer is set before any stream is served.
	authState atomic.Int32
	authTimer *time.Timer

	// replies bounds the replies its control streams hold unwritten
	// (Options.MaxReplyBytesPerConn; see replybudget.go).
	replies *replyBudget
}

// Values of conn.authState.
const (
	authPending int32 = iota
	authDone
	authExpired
)

// authenticated records that a stream of the connection authenticated,
// which lifts the connection's auth deadline for good. It reports false
// when the deadline passed first: the connection is being closed.
func (c *conn) authenticated() bool {
	if c.authState.CompareAndSwap(authPending, authDone) {
		c.authTimer.Stop()
		return true
	}
	return c.authState.Load() == authDone
}

// authDeadline runs AuthTimeout after the connection was accepted: a
// connection none of whose streams has authenticated by then is closed,
// so unauthenticated peers (which may keep a connection alive with PINGs
// forever) cannot hold the MaxConnections slots. Once a stream has
// authenticated the rule no longer applies; idleness is then the idle
// timeout's business.
func (c *conn) authDeadline() {
	if !c.authState.CompareAndSwap(authPending, authExpired) || c.qc.Context().Err() != nil {
		return
	}
	c.s.stats.ConnectionsUnauthenticated.Add(1)
	c.log.Info("closing connection: no stream authenticated in time", "auth_timeout", c.s.opts.AuthTimeout)
	// Code 0 with a reason, as the broker's other connection closes: the
	// peer broke no protocol rule, and felix-wire has no connection codes.
	// The Go SDK knows this close by the reason's suffix
	// wire.ConnAuthTimeout and dials again without a word.
	c.qc.CloseWithError(codeNoError, fmt.Sprintf("no stream authenticated within %v %s", c.s.opts.AuthTimeout, wire.ConnAuthTimeout))
}

// reserveSubID claims a subscription id on this connection: the one the
// client chose (false if it is live here), or else the broker's next id
// that is not live here. Free it with releaseSubID.
func (c *conn) reserveSubID(chosen *uint64) (uint64, bool) {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.subIDs == nil {
		c.subIDs = map[uint64]struct{}{}
	}
	id := uint64(0)
	if chosen != nil {
		id = *chosen
		if _, live := c.subIDs[id]; live {
			return id, false
		}
	} else {
		for {
			id = c.s.opts.Broker.NextSubscriptionID()
			if _, live := c.subIDs[id]; !live {
				break
			}
		}
	}
	c.subIDs[id] = struct{}{}
	return id, true
}

func (c *conn) releaseSubID(id uint64) {
	c.smu.Lock()
	delete(c.subIDs, id)
	c.smu.Unlock()
}

// useTenant counts this connection against tenant once, on its first
// stream authenticated for it.
func (c *conn) useTenant(tenant string) (*tenantUse, error) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if u := c.tenants[tenant]; u != nil {
		return u, nil
	}
	if c.ended {
		// A stream's auth finished after the connection ended: nothing
		// would release a count taken now.
		return nil, errConnEnded
	}
	u, err := c.s.tenants.acquireConn(tenant)
	if err != nil {
		return nil, err
	}
	if c.tenants == nil {
		c.tenants = map[string]*tenantUse{}
	}
	c.tenants[tenant] = u
	return u, nil
}

func (c *conn) releaseTenants() {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	for _, u := range c.tenants {
		c.s.tenants.releaseConn(u)
	}
	c.tenants = nil
	c.ended = true
}

var errConnEnded = errors.New("connection ended")

func newConn(s *Server, qc *quic.Conn) *conn {
	return &conn{s: s, qc: qc, log: s.opts.Logger.With("remote", qc.RemoteAddr().String()),
		replies: newReplyBudget(max(int64(s.opts.MaxReplyBytesPerConn), s.maxReplyBytes()))}
}

func (c *conn) serve() {
	st := &c.s.stats
	st.ConnectionsOpen.Add(1)
	st.ConnectionsTotal.Add(1)
	opened := time.Now()
	c.authTimer = time.AfterFunc(c.s.opts.AuthTimeout, c.authDeadline)
	defer c.authTimer.Stop()
	c.log.Info("connection open")
	defer func() {
		st.ConnectionsOpen.Add(-1)
		c.releaseTenants()
		reason := "closed"
		if err := context.Cause(c.qc.Context()); err != nil {
			reason = err.Error()
		}
		c.log.Info("connection closed", "reason", reason, "duration", time.Since(opened).Round(time.Millisecond))
	}()
	ctx := c.qc.Context()
	done := make(chan struct{})
	go func() { // unidirectional publish-only streams
		defer close(done)
		for {
			rs, err := c.qc.AcceptUniStream(ctx)
			if err != nil {
				return
			}
			c.spawn(func() { c.handleUni(rs) })
		}
	}()
	for {
		bs, err := c.qc.AcceptStream(ctx)
		if err != nil {
			break
		}
		if c.s.draining.Load() {
			bs.CancelRead(streamCodeClosing)
			bs.CancelWrite(streamCodeClosing)
			continue
		}
		c.spawn(func() { c.handleControl(bs) })
	}
	<-done
}

func (c *conn) spawn(f func()) {
	c.s.handlers.Add(1)
	go func() {
		defer c.s.handlers.Done()
		f()
	}()
}

// authenticate reads frames until the stream's auth and checks it. reply
// is nil for publish-only streams (which never answer). Before auth the
// broker answers as the reference's control loop does: a frame with
// unknown flag bits gets "unsupported frame flags" and the stream goes on;
// a binary publish (flag bit 0x0001) or a request gets "auth required", a
// broker-only message "unexpected message type", and the stream closes; a
// client "error" closes it silently; anything else that is not JSON resets
// it. A publish-only stream, as the reference's, checks no flags and ends
// silently on anything but auth.
//
// The auth frame must arrive within AuthTimeout of the stream's first
// bytes (setDeadline sets the stream's deadline: on a control stream, for
// reads and for the answers written before auth, which a client that
// reads none of them would otherwise block for good), else the stream is
// reset: an unauthenticated peer cannot hold streams open at no cost.
// The answer to the auth frame has AuthTimeout of its own. The
// first stream to authenticate lifts the connection's own deadline (see
// authDeadline); a refused auth does not.
func (c *conn) authenticate(r *wire.Reader, reply *wire.Writer, setDeadline func(time.Time) error) (id *Identity, peer uint16, err error) {
	_ = setDeadline(time.Now().Add(c.s.opts.AuthTimeout))
	defer func() {
		// The deadline ended a read, or a write of an answer before auth
		// (a client that reads none of them blocks it): the stream is
		// reset as its auth timed out.
		var ne net.Error
		if id == nil && errors.As(err, &ne) && ne.Timeout() {
			c.s.stats.AuthFailures.Add(1)
			c.log.Info("auth timeout: no auth frame", "after", c.s.opts.AuthTimeout)
		}
	}()
	var a *wire.Auth
	for a == nil {
		f, err := r.ReadFrame()
		if errors.Is(err, wire.ErrUnknownFlags) && reply != nil {
			if err := reply.WriteMessage(&wire.ErrorMessage{Message: "unsupported frame flags"}); err != nil {
				return nil, 0, err
			}
			continue
		}
		if wire.IsFatal(err) {
			return nil, 0, err
		}
		if f.Flags&wire.FlagBinaryPublishBatch != 0 {
			if reply == nil {
				return nil, 0, errClose
			}
			return nil, 0, c.refuse(reply, "auth required")
		}
		m, err := wire.DecodeMessage(f.Payload)
		if err != nil {
			return nil, 0, err
		}
		if reply == nil {
			if a, _ = m.(*wire.Auth); a == nil {
				return nil, 0, errClose
			}
			break
		}
		switch m := m.(type) {
		case *wire.Auth:
			a = m
		case *wire.ErrorMessage:
			return nil, 0, errClose
		case *wire.SubscribeCursorError:
			return nil, 0, c.refuse(reply, "subscribe_cursor_error is a server-to-client message")
		case *wire.Publish, *wire.PublishBatch, *wire.Subscribe, *wire.CachePut, *wire.CacheGet:
			return nil, 0, c.refuse(reply, "auth required")
		case *wire.AuthOK, *wire.Subscribed, *wire.EventStreamHello, *wire.Event, *wire.EventBatch,
			*wire.CacheValue, *wire.CacheOK, *wire.PublishOK, *wire.PublishError, *wire.OK:
			return nil, 0, c.refuse(reply, "unexpected message type")
		default: // an extension message: nothing is negotiated before auth
			return nil, 0, errNotNegotiated(m.Type())
		}
	}
	ctx, cancel := context.WithTimeout(c.qc.Context(), c.s.opts.AuthTimeout)
	defer cancel()
	id, err = c.s.opts.Auth.Authenticate(ctx, a.TenantID, a.Token)
	// The answer (auth_ok or the refusal) has AuthTimeout to be written
	// too, whatever the check took.
	_ = setDeadline(time.Now().Add(c.s.opts.AuthTimeout))
	if err != nil || id == nil || id.Tenant != a.TenantID {
		if n := c.s.stats.AuthFailures.Add(1); c.s.authLogs.Allow() {
			c.log.Warn("auth failed", "tenant", a.TenantID, "err", err, "failures_total", n)
		}
		if reply != nil {
			reply.WriteMessage(&wire.ErrorMessage{Message: "auth failed"})
		}
		return nil, 0, errClose
	}
	use, err := c.useTenant(id.Tenant)
	if errors.Is(err, errConnEnded) {
		return nil, 0, errClose
	}
	if err != nil {
		c.s.stats.AuthFailures.Add(1)
		c.log.Warn("auth refused by tenant limit", "tenant", a.TenantID, "err", err)
		if reply != nil {
			reply.WriteMessage(&wire.ErrorMessage{Message: err.Error()})
		}
		return nil, 0, errClose
	}
	if !c.authenticated() {
		return nil, 0, errClose // past the connection's auth deadline: it is closing
	}
	withUse := *id
	withUse.use = use
	id = &withUse
	peer = wire.PeerFlags(a.ClientFlags) & wire.ServerFlagsFor(wire.PeerFlags(a.ClientFlags))
	if reply != nil {
		var werr error
		if a.ClientFlags != nil {
			werr = reply.WriteMessage(&wire.AuthOK{ServerFlags: wire.ServerFlagsFor(*a.ClientFlags)})
		} else {
			werr = reply.WriteMessage(&wire.OK{})
		}
		if werr != nil {
			return nil, 0, werr
		}
	}
	_ = setDeadline(time.Time{})
	return id, peer, nil
}

// refuse writes error msg and closes the stream.
func (c *conn) refuse(reply *wire.Writer, msg string) error {
	if err := reply.WriteMessage(&wire.ErrorMessage{Message: msg}); err != nil {
		return err
	}
	return errClose
}

// errClose means: the reply (if any) is written; finish the stream cleanly.
var errClose = errors.New("close stream")

// finish ends a bidirectional stream after a handler returns: a clean FIN
// for protocol-level closes, a reset for malformed input or I/O errors.
func (c *conn) finish(bs *quic.Stream, err error) {
	switch {
	case err == nil, errors.Is(err, errClose), errors.Is(err, io.EOF):
		bs.CancelRead(codeNoErrorStream)
		bs.Close()
	default:
		c.malformed(err)
		bs.CancelRead(streamCodeProto)
		bs.CancelWrite(streamCodeProto)
	}
}

const codeNoErrorStream quic.StreamErrorCode = 0

// malformed counts (ProtocolErrors) and logs err, why a stream ends, when
// it is malformed input: a bad frame header (an oversized frame among
// them), a truncated frame, a body that does not decode.
func (c *conn) malformed(err error) {
	var de *wire.DecodeError
	if errors.As(err, &de) {
		c.s.stats.ProtocolErrors.Add(1)
		c.log.Debug("stream ended: malformed input", "err", err)
	}
}

// MaxPreAuthFrameBytes bounds the payload of a frame read on a stream
// before it has authenticated (the limit is MaxFrameBytes when that is
// smaller). An auth frame is small: a tenant and a token, which the
// token verifier bounds to 16 KiB by default (auth.DefaultMaxTokenBytes).
// A larger frame before auth is malformed input, as one over
// MaxFrameBytes is after: the stream is reset (a publish-only stream
// ended), nothing is allocated for it, and it is counted in
// Counters.ProtocolErrors.
const MaxPreAuthFrameBytes = 64 << 10

// preAuthMaxFrame is the frame limit of a stream not yet authenticated.
func (s *Server) preAuthMaxFrame() int { return min(MaxPreAuthFrameBytes, s.maxFrame()) }

// streamReadBuffer is the read buffer of a client stream that has
// authenticated.
const streamReadBuffer = 16 << 10

// preAuthReader returns the reader of the frames of a client stream, src,
// until it authenticates: with the pre-auth frame limit and no read
// buffer, so that a stream that has not authenticated holds little
// memory (a peer may open thousands on a connection and hold them for
// AuthTimeout), and so that the reader takes from src exactly the bytes
// of the frames it returns.
func (c *conn) preAuthReader(src io.Reader) *wire.Reader {
	return wire.NewReader(src, c.s.preAuthMaxFrame())
}

// authenticatedReader switches r, the preAuthReader of src, to read src
// through a buffer of streamReadBuffer bytes with the frame limit, once
// the stream has authenticated, and returns that buffer. The pre-auth
// reads took from src exactly the frames up to the auth, so the frames a
// client pipelined after its auth are all still to be read from src.
// Large payloads are read from src directly (see wire.Reader.SetDirect).
func (c *conn) authenticatedReader(r *wire.Reader, src io.Reader) *bufio.Reader {
	br := bufio.NewReaderSize(src, streamReadBuffer)
	r.Reset(br)
	r.SetDirect(src)
	r.SetMaxPayload(c.s.opts.MaxFrameBytes)
	return br
}

// handleUni serves a publish-only stream: auth (no reply), then publishes.
// As in the reference, flag bit 0x0001 selects a binary publish batch and
// every other frame is read as JSON (no flag check); a publish to an
// unknown stream, or over the tenant's rate, is dropped (counted) and the
// stream goes on; any violation ends the stream silently (STOP_SENDING,
// no error frame: the stream has no reply side), and malformed input (a
// frame that cannot be read, a body that does not decode, a message other
// than a publish) is counted in Counters.ProtocolErrors.
func (c *conn) handleUni(rs *quic.ReceiveStream) {
	defer rs.CancelRead(codeNoErrorStream)
	r := c.preAuthReader(rs) // as a control stream's
	id, _, err := c.authenticate(r, nil, rs.SetReadDeadline)
	if err != nil {
		c.malformed(err)
		return
	}
	c.authenticatedReader(r, rs)
	_, stop := c.untilExpiry(id, func(code quic.StreamErrorCode) { rs.CancelRead(code) })
	defer stop()
	p := newPublisher(c, id)
	var batch wire.BinaryPublishBatch
	for {
		f, owned, err := r.ReadFrameOwned(wire.FlagBinaryPublishBatch, broker.FramedHeadroom)
		if wire.IsFatal(err) {
			c.malformed(err)
			return
		}
		if id.expired() {
			// Read as the token expired, maybe before the expiry timer
			// fired: serve nothing more (stop resets the stream as
			// expired, as the timer would).
			return
		}
		var ns, stream string
		var payloads [][]byte
		var framed broker.Framed
		if f.Flags&wire.FlagBinaryPublishBatch != 0 {
			// An acked prefix is not expected here: the reference reads the
			// body from the first byte, and so do we.
			if err := wire.DecodePublishBatchBody(f.Payload, &batch); err != nil {
				c.malformed(err)
				return
			}
			if c.s.otherTenant(id, batch.TenantID) {
				return
			}
			ns, stream, payloads = batch.Namespace, batch.Stream, batch.Payloads
			framed = framedBody(owned, f.Payload, &batch)
		} else {
			m, err := wire.DecodeMessage(f.Payload)
			if err != nil {
				c.malformed(err)
				return
			}
			var tenant string
			switch m := m.(type) {
			case *wire.Publish:
				tenant, ns, stream, payloads = m.TenantID, m.Namespace, m.Stream, [][]byte{m.Payload}
			case *wire.PublishBatch:
				tenant, ns, stream, payloads = m.TenantID, m.Namespace, m.Stream, m.Payloads
			default:
				c.malformed(errUnexpected) // out of place, as on a control stream
				return
			}
			if c.s.otherTenant(id, tenant) {
				return
			}
		}
		if err := p.publishUnacked(ns, stream, payloads, framed); err != nil && !droppable(err) {
			return
		}
	}
}

// droppable reports whether an unanswered publish that failed with err is
// dropped (and counted) with the stream going on: an unknown stream, as in
// the reference, the tenant's publish rate, and a durable stream's log
// that could not write it (a full disk; counted by the log).
func droppable(err error) bool {
	return errors.Is(err, broker.ErrStreamNotFound) || errors.Is(err, ErrTenantRateLimit) || errors.Is(err, broker.ErrStorage)
}
