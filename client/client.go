package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// Client is a connection pool to one Felix broker. It is safe for
// concurrent use. Close it to release its goroutines and socket.
type Client struct {
	addr string
	opts Options
	tls  *tls.Config
	tr   *transport.ClientTransport
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	pubSlots   []*connSlot
	lanes      []*lane
	eventSlots []*connSlot
	nextEvent  atomic.Uint64
	cacheSlots []*connSlot
	cacheLanes []*cacheLane
	nextCache  atomic.Uint64
	seed       maphash.Seed

	rq requests // the request/reply requester stream (service.go)

	serverFlags atomic.Uint32 // flags from the most recent auth; 0 until known

	notes connNotes // events for Options.OnDisconnect and OnReconnect

	probe resetProber // probes connections after a stateless reset (resetprobe.go)

	closing atomic.Bool // Close has started (before it waits for the publish lanes)

	mu     sync.Mutex
	closed bool
	subs   map[*Subscription]struct{}
	pubs   map[*Publisher]struct{}
	// subIDs are the ids asked for with WithSubscriptionID by this
	// client's subscriptions, from Subscribe until the subscription ends:
	// the broker pairs event streams by id, so two of them at once would
	// be crossed (see Client.reserveSubID).
	subIDs   map[uint64]struct{}
	wg       sync.WaitGroup // every goroutine the client starts
	closeErr error
	once     sync.Once
}

// Dial connects to the broker at addr (host:port): it opens the publish
// and event connections and authenticates every publish stream, so a bad
// address, certificate or token fails here.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	tlsConf, err := opts.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr, err := transport.NewClientTransport(opts.Transport, opts.Logger)
	if err != nil {
		return nil, err
	}
	c := &Client{
		addr: addr,
		opts: opts,
		tls:  tlsConf,
		tr:   tr,
		log:  opts.Logger.With("broker", addr),
		seed: maphash.MakeSeed(),
		subs: map[*Subscription]struct{}{}, subIDs: map[uint64]struct{}{},
		pubs: map[*Publisher]struct{}{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.startConnEvents()
	for i := range opts.PublishConns {
		s := newConnSlot(c, ConnKindPublish, i, false)
		c.pubSlots = append(c.pubSlots, s)
		for range opts.PublishStreamsPerConn {
			c.lanes = append(c.lanes, &lane{c: c, slot: s, idx: len(c.lanes), open: newGate()})
		}
	}
	for i := range opts.EventConns {
		c.eventSlots = append(c.eventSlots, newConnSlot(c, ConnKindEvent, i, true))
	}
	for i := range opts.CacheConns { // dialed on first use
		s := newConnSlot(c, ConnKindCache, i, false)
		c.cacheSlots = append(c.cacheSlots, s)
		for range opts.CacheStreamsPerConn {
			c.cacheLanes = append(c.cacheLanes, &cacheLane{c: c, slot: s, open: newGate()})
		}
	}
	if err := c.connectAll(ctx); err != nil {
		c.Close()
		return nil, err
	}
	c.log.Debug("felix client connected", "publish_streams", len(c.lanes), "event_conns", len(c.eventSlots),
		"server_flags", c.ServerFlags())
	return c, nil
}

// connectAll dials the publish connections and authenticates every
// publish lane, in parallel, returning the first error. Event connections
// are dialed at their first subscription or queue consumer, as cache
// connections at their first request: a broker closes a connection on
// which no stream authenticates within its auth timeout, so one dialed
// here and used later would only be closed and dialed again.
func (c *Client) connectAll(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.lanes))
	for i, l := range c.lanes {
		wg.Go(func() {
			_, errs[i] = l.session(ctx, false)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ServerFlags is the capability set the broker advertised in its most
// recent auth reply (wire.OriginalV1Flags for a legacy broker).
func (c *Client) ServerFlags() uint16 { return uint16(c.serverFlags.Load()) }

// TenantID is the tenant the client authenticates as.
func (c *Client) TenantID() string { return c.opts.TenantID }

// Close ends every subscription and publisher, fails calls in flight with
// ErrClosed, closes the connections and the socket, and returns once every
// goroutine of the client has exited. It is safe to call more than once.
//
// Fire-and-forget publishes (WithAck(wire.AckNone), or a Publisher with
// NoAck) that were already written are handed over first: each publish
// stream that carried one is ended, and Close waits until the broker has
// read it to the end (at most closeFlushTimeout) before closing the
// connections. A Publisher's queued events are not sent: Close the
// Publisher first.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.closing.Store(true)
		c.mu.Lock()
		c.closed = true
		subs := make([]*Subscription, 0, len(c.subs))
		for s := range c.subs {
			subs = append(subs, s)
		}
		pubs := make([]*Publisher, 0, len(c.pubs))
		for p := range c.pubs {
			pubs = append(pubs, p)
		}
		c.mu.Unlock()
		for _, p := range pubs {
			p.abort()
		}
		c.finishLanes()
		c.cancel()
		for _, s := range subs {
			s.cancelReader()
		}
		for _, s := range c.allSlots() {
			s.close()
		}
		c.wg.Wait()
		c.closeErr = c.tr.Close()
	})
	return c.closeErr
}

// closeFlushTimeout bounds how long Close waits for the broker to read the
// fire-and-forget publishes already written.
const closeFlushTimeout = 5 * time.Second

// finishLanes ends every publish session that carried fire-and-forget
// frames and waits for the broker to have read them (see pubSession.finish).
func (c *Client) finishLanes() {
	timeout := closeFlushTimeout
	if d := c.opts.RequestTimeout; d > 0 && d < timeout {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range c.lanes {
		if s := l.live(); s != nil && s.unconfirmed.Load() {
			wg.Go(func() { s.finish(ctx) })
		}
		l.mu.Lock()
		old := l.retiring
		l.mu.Unlock()
		if old != nil { // a rotation is ending it: let it finish
			wg.Go(func() {
				select {
				case <-old.done:
				case <-ctx.Done():
				}
			})
		}
	}
	wg.Wait()
}

// goTracked runs f in a goroutine the client waits for on Close. It
// reports false (and does not run f) once the client is closed.
func (c *Client) goTracked(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Go(f)
	return true
}

// isClosed reports whether Close has started: from its first step, while
// it still waits for the broker to read fire-and-forget publishes (a call
// that gives up meanwhile reports ErrClosed, not its own timeout).
func (c *Client) isClosed() bool { return c.closing.Load() || c.ctx.Err() != nil }

// bind returns a context that ends with ctx, with the client's Close, and
// after the request timeout (if any).
func (c *Client) bind(ctx context.Context, withTimeout bool) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if withTimeout && c.opts.RequestTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.opts.RequestTimeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// ctxErr maps the end of a bound context to the error a caller should see:
// ErrClosed when the client closed, otherwise the context's error.
func (c *Client) ctxErr(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	return ctx.Err()
}

// laneFor picks the publish stream for a (namespace, stream): the same
// pair always uses the same lane, so one caller's publishes stay in order.
func (c *Client) laneFor(ns, stream string) *lane {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(ns)
	h.WriteByte(0)
	h.WriteString(stream)
	return c.lanes[h.Sum64()%uint64(len(c.lanes))]
}

// checkFrame rejects a frame the broker would refuse as too large.
func (c *Client) checkFrame(frame []byte) error {
	if n := len(frame) - wire.HeaderSize; n > c.opts.MaxFrameBytes {
		return fmt.Errorf("felix: frame of %d bytes exceeds MaxFrameBytes %d: %w", n, c.opts.MaxFrameBytes, wire.ErrFrameTooLarge)
	}
	return nil
}

// backoff returns the wait before dial attempt n (n failures so far), with
// ±20% jitter.
func (c *Client) backoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := c.opts.Reconnect.MinBackoff
	for i := 1; i < failures && d < c.opts.Reconnect.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.opts.Reconnect.MaxBackoff)
	return jitter(d)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isServerReply reports whether err is a definite answer from the broker
// (retrying the same request elsewhere would get the same answer).
func isServerReply(err error) bool {
	var se *ServerError
	var ce *CursorError
	return errors.As(err, &se) || errors.As(err, &ce)
}

// jitter spreads d by ±20% so that many clients do not redial in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d) / 5
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1))
}
