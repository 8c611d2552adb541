package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// Application error codes used when the server closes or resets.
const (
	codeNoError       quic.ApplicationErrorCode = 0
	streamCodeProto                             = quic.StreamErrorCode(wire.ResetMalformed) // malformed input
	streamCodeClosing                           = quic.StreamErrorCode(wire.ResetClosing)   // server shutting down / subscription ended
	// streamCodeTokenExpired resets every stream a token authenticated
	// when the token expires (Identity.Expires).
	streamCodeTokenExpired = quic.StreamErrorCode(wire.ResetTokenExpired)
)

// drainLinger is how long Shutdown lets finished event streams flush.
const drainLinger = 100 * time.Millisecond

// Server serves felix-wire over QUIC.
type Server struct {
	opts Options
	ln   *transport.Listener

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[*conn]struct{}

	handlers sync.WaitGroup // connection, stream and writer goroutines
	queues   *queues
	services *services    // request/reply (service.go)
	busy     atomic.Int64 // control streams in the middle of a request
	writers  atomic.Int64 // live subscription writers
	draining atomic.Bool
	// stopped is closed when the first Shutdown has stopped the server;
	// cut is closed by a later Shutdown whose context ended first, to end
	// the drain at once.
	stopped chan struct{}
	cut     chan struct{}
	cutOnce sync.Once

	stats   Counters
	limits  LimitCounters
	tenants *tenants
	// authLogs limits the "auth failed" warnings (see AuthFailureLogBurst):
	// a peer trying tokens in a loop would otherwise write a line each.
	authLogs *rate.Limiter
	// cacheRefusalLogs: a cache the auto-create bound refuses is logged
	// at most once every 10 s (as a stream the engine refuses), with the
	// count so far.
	cacheRefusalLogs *rate.Limiter
	// drainRefusalLogs: a connection refused during the drain is logged
	// at once, then at most once a second, with the count so far (clients
	// redialing with backoff would otherwise write a line each).
	drainRefusalLogs *rate.Limiter
}

// AuthFailureLogBurst and AuthFailureLogRate bound the "auth failed"
// warnings: the first AuthFailureLogBurst at once, then
// AuthFailureLogRate a second; every failure is counted
// (Counters.AuthFailures, felix_auth_failures_total) and each warning
// carries the count so far.
const (
	AuthFailureLogBurst = 10
	AuthFailureLogRate  = 1
)

// Counters are server-level counters (all cumulative except the gauges).
type Counters struct {
	ConnectionsOpen  atomic.Int64 // gauge
	ConnectionsTotal atomic.Uint64
	// ConnectionsRefused counts connections closed at once because the
	// broker had Options.MaxConnections open.
	ConnectionsRefused atomic.Uint64
	Subscriptions      atomic.Int64 // gauge
	ProtocolErrors     atomic.Uint64
	AuthFailures       atomic.Uint64 // auth frames refused (bad token, tenant limits)
	// TenantMismatches counts requests naming a tenant other than the one
	// their stream authenticated as, refused with "tenant mismatch".
	TenantMismatches  atomic.Uint64
	TokenExpiries     atomic.Uint64 // streams reset because their token expired
	SubscriberResets  atomic.Uint64 // subscriptions ended by the client or a write error
	UnknownStreamDrop atomic.Uint64 // unacked publishes to unknown (or just deleted) streams, dropped
	// EventTooLargeDrop counts publishes refused because an event, framed
	// for its subscribers, would exceed the frame limit: acked ones got
	// the error, unacked ones were dropped.
	EventTooLargeDrop atomic.Uint64
	// ShutdownDrop counts unacked publishes dropped because the broker
	// was closing (broker.ErrClosed): they arrived during a shutdown.
	ShutdownDrop atomic.Uint64
	// SubscriptionsPerConnRefused counts subscribes refused because their
	// connection had Options.MaxSubscriptionsPerConn live subscriptions.
	SubscriptionsPerConnRefused atomic.Uint64
	// ReplyBudgetWaits counts cache reads that waited for room in their
	// connection's reply budget (Options.MaxReplyBytesPerConn): its
	// client had left that many bytes of replies unread.
	ReplyBudgetWaits atomic.Uint64
	// CacheAutoCreateRefused counts uses of an unknown cache refused
	// because Options.MaxAutoCreatedCaches caches existed (see cacheFor).
	CacheAutoCreateRefused atomic.Uint64

	// ConnectionsUnauthenticated counts connections closed because none
	// of their streams authenticated within Options.AuthTimeout of the
	// connection's accept.
	ConnectionsUnauthenticated atomic.Uint64
	// ConnectionsRefusedDraining counts connections refused because the
	// broker drains (Shutdown), clients redialing meanwhile: dialed during
	// the drain (refused with CONNECTION_REFUSED before any handshake),
	// or with a handshake under way when it began (closed at once with
	// "broker shutting down").
	ConnectionsRefusedDraining atomic.Uint64
}

// New validates options and returns a server that is not yet listening.
func New(opts Options) (*Server, error) {
	if opts.Broker == nil {
		return nil, errors.New("server: Options.Broker is required")
	}
	if opts.TLS == nil {
		return nil, errors.New("server: Options.TLS is required")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts.withDefaults(), ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{},
		stopped: make(chan struct{}), cut: make(chan struct{})}
	s.queues = newQueues(s)
	s.services = newServices(s.opts.Services)
	s.tenants = newTenants(s.opts, &s.limits)
	s.authLogs = rate.NewLimiter(AuthFailureLogRate, AuthFailureLogBurst)
	s.cacheRefusalLogs = rate.NewLimiter(rate.Every(10*time.Second), 1)
	s.drainRefusalLogs = rate.NewLimiter(rate.Every(time.Second), 1)
	return s, nil
}

// Listen binds the UDP address (e.g. "127.0.0.1:0").
func (s *Server) Listen(addr string) error {
	ln, err := transport.Listen(addr, s.opts.TLS, s.opts.Transport, s.opts.Logger)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	s.ln = ln
	s.opts.Logger.Info("felix listening", "addr", ln.Addr().String())
	tick := s.opts.Queues.TickInterval
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	s.handlers.Add(1)
	go func() {
		defer s.handlers.Done()
		s.queues.tick(tick)
	}()
	s.handlers.Go(func() { s.services.reg.RunTimers(s.ctx) })
	if d := s.opts.DropReportInterval; d > 0 {
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			s.reportDrops(d)
		}()
	}

	return nil
}

// Addr returns the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns the server's counters.
func (s *Server) Stats() *Counters { return &s.stats }

// Denials is the number of operations refused by permissions (counted by
// Options.Auditor).
func (s *Server) Denials() uint64 { return s.opts.Auditor.Denials() }

// LimitStats returns the counts of refusals by the tenant limits.
func (s *Server) LimitStats() *LimitCounters { return &s.limits }

// ForgetStreams tells the server that streams were removed from its broker
// (deleted through the control plane, say): their consumer groups are
// closed and the groups' state in Queues.StateDir is deleted, so a stream
// created again under the same name starts without groups.
func (s *Server) ForgetStreams(keys []broker.StreamKey) { s.queues.forget(keys) }

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		return errors.New("server: Serve before Listen")
	}
	for {
		qc, err := s.ln.Accept(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		c := newConn(s, qc)
		s.mu.Lock()
		if s.draining.Load() {
			s.mu.Unlock()
			s.refuseDraining(qc)
			continue
		}
		if len(s.conns) >= s.opts.MaxConnections {
			s.mu.Unlock()
			s.stats.ConnectionsRefused.Add(1)
			qc.CloseWithError(codeNoError, fmt.Sprintf("too many connections (%d; --max-connections)", s.opts.MaxConnections))
			continue
		}
		s.conns[c] = struct{}{}
		s.handlers.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.handlers.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// refuseDraining closes at once, as the drain closes every connection
// ("broker shutting down", code 0), a connection whose handshake completed
// while the broker drains (it was under way when the drain began: later
// ones are refused by the listener, see drainRefused), and counts and
// logs it: a client that redials during the drain learns at once that
// this broker is going away.
func (s *Server) refuseDraining(qc *quic.Conn) {
	s.drainRefused(qc.RemoteAddr())
	qc.CloseWithError(codeNoError, "broker shutting down")
}

// drainRefused counts and logs a connection refused during the drain:
// by the listener (transport.Listener.RefuseNew: its handshake refused
// with CONNECTION_REFUSED) or by refuseDraining. The log is limited to a
// line a second, with the count so far.
func (s *Server) drainRefused(remote net.Addr) {
	if n := s.stats.ConnectionsRefusedDraining.Add(1); s.drainRefusalLogs.Allow() {
		s.opts.Logger.Info("connection refused: broker shutting down", "remote", remote.String(), "refused_total", n)
	}
}

// Shutdown drains the server: it stops accepting connections and streams,
// ends every subscription after its queued events are written, waits (until
// ctx ends) for requests in progress, then closes the connections with
// "broker shutting down" and the socket. It closes the broker.
//
// A second call (from another goroutine) returns once the server has
// stopped, as the first does. If its ctx ends before that, it cuts the
// drain short, as a second signal does for the process: the connections
// are closed at once (queued events are not delivered) and it returns
// ctx's error once the server has stopped.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		select {
		case <-s.stopped:
			return nil
		case <-ctx.Done():
		}
		s.cutOnce.Do(func() { close(s.cut) })
		<-s.stopped
		return ctx.Err()
	}
	defer close(s.stopped)
	if s.ln != nil {
		// From now on a client that dials (a redial, say) is refused at
		// once and tries again later, the restarted broker or another.
		s.ln.RefuseNew(s.drainRefused)
	}
	s.opts.Logger.Info("felix draining")
	// Ending the broker makes every subscription writer flush its queue,
	// finish its event stream and exit; closing the groups ends consumers
	// (their unacked deliveries stay pending for redelivery).
	s.queues.close() // before the broker closes the stream logs they read
	s.opts.Broker.Close()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	// Requests to services in flight get their replies (new ones are
	// refused, see control.request) as publishes in progress get acks.
	for s.busy.Load() > 0 || s.writers.Load() > 0 || s.services.reg.Pending() > 0 {
		select {
		case <-ctx.Done():
			s.opts.Logger.Warn("drain budget exhausted", "busy_requests", s.busy.Load(), "subscription_writers", s.writers.Load(),
				"service_requests", s.services.reg.Pending())
			goto closeAll
		case <-s.cut:
			s.opts.Logger.Warn("drain cut short by a second shutdown", "busy_requests", s.busy.Load(), "subscription_writers", s.writers.Load(),
				"service_requests", s.services.reg.Pending())
			goto closeAll
		case <-tick.C:
		}
	}
	// Give the written events a moment to leave the socket: closing a QUIC
	// connection drops data still in its send buffers.
	select {
	case <-ctx.Done():
	case <-s.cut:
	case <-time.After(drainLinger):
	}
closeAll:
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.qc.CloseWithError(codeNoError, "broker shutting down")
	}
	s.mu.Unlock()
	var err error
	if s.ln != nil {
		// Connections that finished their handshake after Serve stopped
		// accepting are told too, as are handshakes under way (refused).
		err = s.ln.CloseWithError(codeNoError, "broker shutting down")
	}
	// Closed connections end their handlers at once; one that does not
	// (a bug) must not hold the process past its budget.
	exited := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(handlerExitWait):
		s.opts.Logger.Error("connection handlers still running after the connections closed; not waiting for them")
	}
	s.queues.close()
	return err
}

// handlerExitWait bounds Shutdown's wait for connection handlers after it
// closed their connections.
const handlerExitWait = 2 * time.Second
