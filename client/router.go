package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// router pairs the event streams a broker opens on one connection with the
// subscriptions waiting for them, by the subscription id in each stream's
// event_stream_hello. The broker writes the hello before it replies
// `subscribed`, so a stream can arrive before or after its subscriber asks
// for it: early ones are parked (bounded, and dropped after parkTimeout).
type router struct {
	c    *Client
	conn *quic.Conn
	done chan struct{} // closed when run returns

	mu      sync.Mutex
	closed  bool
	waiters map[uint64]chan *quic.ReceiveStream
	parked  map[uint64]*parkedStream
}

type parkedStream struct {
	rs    *quic.ReceiveStream
	timer *time.Timer
}

func newRouter(c *Client, conn *quic.Conn) *router {
	return &router{
		c: c, conn: conn, done: make(chan struct{}),
		waiters: map[uint64]chan *quic.ReceiveStream{},
		parked:  map[uint64]*parkedStream{},
	}
}

// run accepts event streams until the connection ends. Each stream's
// hello is read on a goroutine of its own, so one whose hello is slow to
// come (for at most helloTimeout) does not hold up the streams behind it;
// at most maxParked hellos are read at once, and a stream beyond that is
// dropped.
func (r *router) run() {
	var hellos sync.WaitGroup
	defer func() {
		hellos.Wait() // the connection is gone: their reads fail at once
		r.shutdown()
	}()
	pending := make(chan struct{}, maxParked)
	for {
		rs, err := r.conn.AcceptUniStream(r.conn.Context())
		if err != nil {
			return
		}
		select {
		case pending <- struct{}{}:
		default:
			r.c.log.Warn("felix: too many event streams without a hello yet; dropping one")
			rs.CancelRead(streamCodeCancel)
			continue
		}
		hellos.Go(func() {
			defer func() { <-pending }()
			id, err := readHello(rs, r.c.opts.MaxFrameBytes)
			if err != nil {
				r.c.log.Warn("felix: dropping event stream without a valid hello", "err", err)
				rs.CancelRead(streamCodeCancel)
				return
			}
			r.deliver(id, rs)
		})
	}
}

// readHello reads the first frame of an event stream, which must be
// event_stream_hello. It reads exactly one frame, leaving the rest for the
// subscription's reader.
func readHello(rs *quic.ReceiveStream, maxFrame int) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), helloTimeout)
	defer cancel()
	m, err := readMessage(ctx, rs.SetReadDeadline, wire.NewReader(rs, maxFrame))
	if err != nil {
		return 0, err
	}
	hello, ok := m.(*wire.EventStreamHello)
	if !ok {
		return 0, &ProtocolError{Detail: "event stream starts with " + string(m.Type())}
	}
	return hello.SubscriptionID, nil
}

// deliver hands an event stream to its waiting subscriber or parks it.
func (r *router) deliver(id uint64, rs *quic.ReceiveStream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiters[id]; ok {
		delete(r.waiters, id)
		ch <- rs
		return
	}
	if old, ok := r.parked[id]; ok { // a duplicate id: keep the newest
		old.timer.Stop()
		old.rs.CancelRead(streamCodeCancel)
	} else if len(r.parked) >= maxParked {
		r.c.log.Warn("felix: too many unclaimed event streams; dropping one", "subscription_id", id)
		rs.CancelRead(streamCodeCancel)
		return
	}
	p := &parkedStream{rs: rs}
	p.timer = time.AfterFunc(parkTimeout, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.parked[id] == p {
			delete(r.parked, id)
			rs.CancelRead(streamCodeCancel)
		}
	})
	r.parked[id] = p
}

// errRouterClosed: the connection carrying the subscription ended.
var errRouterClosed = errors.New("event connection closed")

// claim returns the event stream for subscription id, waiting for it to
// arrive until ctx ends or the connection closes.
func (r *router) claim(ctx context.Context, id uint64) (*quic.ReceiveStream, error) {
	r.mu.Lock()
	if p, ok := r.parked[id]; ok {
		delete(r.parked, id)
		p.timer.Stop()
		r.mu.Unlock()
		return p.rs, nil
	}
	if r.closed {
		r.mu.Unlock()
		return nil, errRouterClosed
	}
	ch := make(chan *quic.ReceiveStream, 1)
	r.waiters[id] = ch
	r.mu.Unlock()
	select {
	case rs := <-ch:
		return rs, nil
	case <-r.done:
		select {
		case rs := <-ch: // delivered as the connection ended
			rs.CancelRead(streamCodeCancel)
		default:
		}
		return nil, errRouterClosed
	case <-ctx.Done():
		r.mu.Lock()
		if r.waiters[id] == ch {
			delete(r.waiters, id)
		}
		r.mu.Unlock()
		select {
		case rs := <-ch: // delivered just before we gave up
			rs.CancelRead(streamCodeCancel)
		default:
		}
		return nil, ctx.Err()
	}
}

// shutdown drops parked streams and wakes waiters once the connection is
// gone.
func (r *router) shutdown() {
	r.mu.Lock()
	r.closed = true
	for id, p := range r.parked {
		p.timer.Stop()
		p.rs.CancelRead(streamCodeCancel)
		delete(r.parked, id)
	}
	r.mu.Unlock()
	close(r.done)
}
