package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/felixmq/felix/wire"
)

// Publish publishes one payload to namespace/stream of the client's
// tenant. By default it waits for the broker's ack; WithAck(wire.AckNone)
// returns once the frame is written. An ack error is a *ServerError; a
// connection lost after the frame was sent is a *ConnectionError (the
// event may or may not have been accepted).
func (c *Client) Publish(ctx context.Context, namespace, stream string, payload []byte, opts ...PublishOption) error {
	return c.PublishBatch(ctx, namespace, stream, [][]byte{payload}, opts...)
}

// PublishBatch publishes payloads, in order, as one batch (one frame, one
// ack). Publishes to the same namespace/stream use the same publish stream,
// so one goroutine's publishes are delivered in call order. Many
// goroutines may publish at once; their acked publishes are pipelined.
func (c *Client) PublishBatch(ctx context.Context, namespace, stream string, payloads [][]byte, opts ...PublishOption) error {
	cfg := newPublishConfig(opts)
	p, err := c.laneFor(namespace, stream).send(ctx, namespace, stream, payloads, cfg.ack)
	if err != nil {
		return err
	}
	return p.wait(ctx)
}

// pendingAck is a sent publish whose ack may still be owed.
type pendingAck struct {
	c    *Client
	sess *pubSession
	id   uint64
	ch   chan error // nil for fire-and-forget
}

// wait blocks until the ack arrives, ctx ends, the request timeout passes
// or the client closes. A publish given up on is forgotten; its late ack
// is dropped.
func (p pendingAck) wait(ctx context.Context) error {
	if p.ch == nil {
		return nil
	}
	select { // fast path: already acked
	case err := <-p.ch:
		return err
	default:
	}
	var timeout <-chan time.Time
	if d := p.c.opts.RequestTimeout; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case err := <-p.ch:
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-p.c.ctx.Done():
		err = ErrClosed
	case <-timeout:
		err = fmt.Errorf("felix: no ack within %v: %w", p.c.opts.RequestTimeout, context.DeadlineExceeded)
	}
	p.sess.forget(p.id)
	select {
	case ackErr := <-p.ch: // the ack won the race
		return ackErr
	default:
	}
	if p.c.isClosed() { // Close began while this waited
		return ErrClosed
	}
	return err
}

var framePool = sync.Pool{New: func() any { return new([]byte) }}

// send writes one publish frame on the lane: binary fire-and-forget for
// AckNone, acked binary (0x0009) when the broker advertised it, else JSON
// publish_batch with a request id. Frames never wait for earlier acks. A
// session that ends before the frame is written is replaced transparently.
func (l *lane) send(ctx context.Context, ns, stream string, payloads [][]byte, mode wire.AckMode) (pendingAck, error) {
	if mode > wire.AckPerBatch {
		return pendingAck{}, fmt.Errorf("felix: invalid ack mode %d", mode)
	}
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 1<<20 { // do not pool rare huge frames
			framePool.Put(bp)
		}
	}()
	for attempt := 0; ; attempt++ {
		sess, err := l.session(ctx, true)
		if err != nil {
			return pendingAck{}, err
		}
		p, err := l.sendOn(ctx, sess, bp, ns, stream, payloads, mode)
		if !errors.Is(err, errSessionGone) {
			return p, err
		}
		if attempt == 3 {
			return pendingAck{}, &ConnectionError{Op: "publish", Err: err}
		}
	}
}

// sendOn encodes and writes the frame on one session.
func (l *lane) sendOn(ctx context.Context, sess *pubSession, bp *[]byte, ns, stream string, payloads [][]byte, mode wire.AckMode) (pendingAck, error) {
	c := l.c
	if err := sess.waitReady(ctx); err != nil {
		return pendingAck{}, err
	}
	var (
		id    uint64
		frame []byte
		err   error
	)
	switch {
	case mode == wire.AckNone:
		frame, err = wire.AppendPublishBatchFrame((*bp)[:0], c.opts.TenantID, ns, stream, payloads)
	case wire.Supports(sess.flags, wire.FlagBinaryPublishAcked):
		id = sess.nextID.Add(1)
		frame, err = wire.AppendAckedPublishBatchFrame((*bp)[:0], id, mode, c.opts.TenantID, ns, stream, payloads)
	default:
		id = sess.nextID.Add(1)
		frame, err = wire.AppendMessageFrame((*bp)[:0], &wire.PublishBatch{
			TenantID: c.opts.TenantID, Namespace: ns, Stream: stream, Payloads: payloads,
			RequestID: wire.U64(id), Ack: wire.Ack(mode),
		})
	}
	if err != nil {
		return pendingAck{}, err
	}
	*bp = frame
	if err := c.checkFrame(frame); err != nil {
		return pendingAck{}, err
	}
	p := pendingAck{c: c, sess: sess, id: id}
	if mode != wire.AckNone {
		if p.ch, err = sess.register(id); err != nil {
			return pendingAck{}, err
		}
	}
	if err := sess.write(ctx, frame, p.ch != nil); err != nil {
		if p.ch != nil {
			sess.forget(id)
		}
		return pendingAck{}, err
	}
	if mode == wire.AckNone {
		sess.unconfirmed.Store(true)
	}
	return p, nil
}
