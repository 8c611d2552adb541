package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

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
}

// useTenant counts this connection against tenant once, on its first
// stream authenticated for it.
func (c *conn) useTenant(tenant string) (*tenantUse, error) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if u := c.tenants[tenant]; u != nil {
		return u, nil
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
}

func newConn(s *Server, qc *quic.Conn) *conn {
	return &conn{s: s, qc: qc, log: s.opts.Logger.With("remote", qc.RemoteAddr().String())}
}

func (c *conn) serve() {
	st := &c.s.stats
	st.ConnectionsOpen.Add(1)
	st.ConnectionsTotal.Add(1)
	opened := time.Now()
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

// authenticate reads and checks the first frame of a stream. reply is nil
// for publish-only streams (which never answer).
func (c *conn) authenticate(r *wire.Reader, reply *wire.Writer) (*Identity, uint16, error) {
	f, err := r.ReadFrame()
	if err != nil {
		return nil, 0, err
	}
	if f.Flags != 0 {
		if reply != nil {
			reply.WriteMessage(&wire.ErrorMessage{Message: "auth required"})
		}
		return nil, 0, errClose
	}
	m, err := wire.DecodeMessage(f.Payload)
	if err != nil {
		return nil, 0, err
	}
	a, ok := m.(*wire.Auth)
	if !ok {
		if reply != nil {
			reply.WriteMessage(&wire.ErrorMessage{Message: "auth required"})
		}
		return nil, 0, errClose
	}
	ctx, cancel := context.WithTimeout(c.qc.Context(), c.s.opts.AuthTimeout)
	defer cancel()
	id, err := c.s.opts.Auth.Authenticate(ctx, a.TenantID, a.Token)
	if err != nil || id == nil || id.Tenant != a.TenantID {
		c.s.stats.AuthFailures.Add(1)
		c.log.Warn("auth failed", "tenant", a.TenantID, "err", err)
		if reply != nil {
			reply.WriteMessage(&wire.ErrorMessage{Message: "auth failed"})
		}
		return nil, 0, errClose
	}
	use, err := c.useTenant(id.Tenant)
	if err != nil {
		c.log.Warn("auth refused by tenant limit", "tenant", a.TenantID, "err", err)
		if reply != nil {
			reply.WriteMessage(&wire.ErrorMessage{Message: err.Error()})
		}
		return nil, 0, errClose
	}
	withUse := *id
	withUse.use = use
	id = &withUse
	peer := wire.PeerFlags(a.ClientFlags) & wire.ServerFlagsFor(wire.PeerFlags(a.ClientFlags))
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
	return id, peer, nil
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
		if isMalformed(err) {
			c.s.stats.ProtocolErrors.Add(1)
			c.log.Debug("stream reset: malformed input", "err", err)
		}
		bs.CancelRead(streamCodeProto)
		bs.CancelWrite(streamCodeProto)
	}
}

const codeNoErrorStream quic.StreamErrorCode = 0

func isMalformed(err error) bool {
	var de *wire.DecodeError
	return errors.As(err, &de)
}

// handleUni serves a publish-only stream: auth (no reply), then publishes.
// Any violation ends the stream silently, as in the reference.
func (c *conn) handleUni(rs *quic.ReceiveStream) {
	defer rs.CancelRead(codeNoErrorStream)
	r := wire.NewReader(bufio.NewReaderSize(rs, 16<<10), c.s.opts.MaxFrameBytes) // as a control stream's
	id, _, err := c.authenticate(r, nil)
	if err != nil {
		return
	}
	_, stop := c.untilExpiry(id, func(code quic.StreamErrorCode) { rs.CancelRead(code) })
	defer stop()
	p := newPublisher(c, id)
	var batch wire.BinaryPublishBatch
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return
		}
		switch f.Flags {
		case wire.FlagBinaryPublishBatch:
			if wire.DecodePublishBatch(f.Flags, f.Payload, &batch) != nil || batch.TenantID != id.Tenant {
				return
			}
			if p.publishUnacked(batch.Namespace, batch.Stream, batch.Payloads) != nil {
				return
			}
		case 0:
			m, err := wire.DecodeMessage(f.Payload)
			if err != nil {
				return
			}
			var ns, stream, tenant string
			var payloads [][]byte
			switch m := m.(type) {
			case *wire.Publish:
				tenant, ns, stream, payloads = m.TenantID, m.Namespace, m.Stream, [][]byte{m.Payload}
			case *wire.PublishBatch:
				tenant, ns, stream, payloads = m.TenantID, m.Namespace, m.Stream, m.Payloads
			default:
				return
			}
			if tenant != id.Tenant || p.publishUnacked(ns, stream, payloads) != nil {
				return
			}
		default:
			return
		}
	}
}
