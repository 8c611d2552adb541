package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// eventStreamTimeout bounds the wait for the client to let the broker open
// a subscription's event stream.
const eventStreamTimeout = 5 * time.Second

// subscribe serves one subscribe request: register, open the event
// stream with its hello, reply subscribed, then this goroutine becomes the
// subscription's writer. The control stream is not read again.
func (ctl *control) subscribe(m *wire.Subscribe) error {
	c := ctl.c
	if m.Start != nil && m.Start.Kind == wire.StartTime && ctl.peer&wire.CapStartTime == 0 {
		// Without the capability the time form is an unknown start, as
		// for the reference: malformed JSON, the stream is reset.
		return &wire.DecodeError{What: "json message", Err: wire.ErrInvalidJSON,
			Detail: "subscribe start time_ms without the start-time capability"}
	}
	// The reference's order: tenant, permission, the connection's
	// subscription cap, then the stream.
	if ctl.otherTenant(m.TenantID) {
		return ctl.fail("tenant mismatch")
	}
	if !ctl.authorize(ActionSubscribe, StreamResource(m.TenantID, m.Namespace, m.Stream)) {
		return ctl.fail("forbidden")
	}
	if atomic.AddInt64(&c.subs, 1) > int64(c.s.opts.MaxSubscriptionsPerConn) {
		atomic.AddInt64(&c.subs, -1)
		c.s.stats.SubscriptionsPerConnRefused.Add(1)
		return ctl.fail("max subscriptions per connection exceeded")
	}
	// An id 0 asked for by the client is treated as no choice (the engine
	// reserves 0 for "assign one").
	chosen := m.SubscriptionID
	if chosen != nil && *chosen == 0 {
		chosen = nil
	}
	subID, ok := c.reserveSubID(chosen)
	if !ok {
		atomic.AddInt64(&c.subs, -1)
		return ctl.fail(fmt.Sprintf("subscription id %d %s", subID, wire.SubscriptionIDInUse))
	}
	if err := c.s.tenants.acquireSub(ctl.id.use); err != nil {
		atomic.AddInt64(&c.subs, -1)
		c.releaseSubID(subID)
		return ctl.fail(err.Error())
	}
	release := func() {
		atomic.AddInt64(&c.subs, -1)
		c.releaseSubID(subID)
		c.s.tenants.releaseSub(ctl.id.use)
	}
	s, err := c.s.opts.Broker.Stream(m.TenantID, m.Namespace, m.Stream)
	if err != nil {
		release()
		return ctl.fail(err.Error())
	}
	opts := broker.SubscribeOptions{ID: subID}
	if m.Start != nil {
		opts.Start = *m.Start
	}
	// Offsets go on the wire for durable streams when the peer negotiated
	// them; in-memory streams carry none (as the reference) unless the peer
	// also negotiated our CapMemOffsets extension.
	opts.WantOffsets = wire.Supports(ctl.peer, wire.FlagEventBatchOffsets) &&
		(s.IsDurable() || ctl.peer&wire.CapMemOffsets != 0)
	sub, err := s.Subscribe(opts)
	if err != nil {
		release()
		var ce *broker.CursorError
		if errors.As(err, &ce) {
			reason := wire.CursorInFuture
			if ce.TooOld {
				reason = wire.CursorTooOld
			}
			if err := ctl.reply(&wire.SubscribeCursorError{Reason: reason, Requested: ce.Requested, Available: ce.Available}); err != nil {
				return err
			}
			return errClose
		}
		return ctl.fail(err.Error())
	}
	ctx, cancel := context.WithTimeout(c.qc.Context(), eventStreamTimeout)
	us, err := c.qc.OpenUniStreamSync(ctx)
	cancel()
	if err != nil {
		open := atomic.LoadInt64(&c.subs) - 1
		sub.Close()
		release()
		if errors.Is(err, context.DeadlineExceeded) && c.qc.Context().Err() == nil {
			// The peer's limit of concurrent unidirectional streams (one
			// per subscription) is reached: say so, not "context deadline
			// exceeded".
			return ctl.fail(fmt.Sprintf("no event stream within %v: the client allows no more streams on this connection "+
				"(subscriptions on it: %d); subscribe on another connection or raise the client's limit of concurrent unidirectional streams",
				eventStreamTimeout, open))
		}
		return ctl.fail(err.Error())
	}
	hello, _ := wire.AppendMessageFrame(nil, &wire.EventStreamHello{SubscriptionID: sub.ID()})
	if _, err := us.Write(hello); err != nil {
		sub.Close()
		release()
		us.CancelWrite(streamCodeClosing)
		return ctl.fail(err.Error())
	}
	// A reset from here on (the token expiring, the subscription ending)
	// still delivers the hello where the client offered RESET_STREAM_AT: a
	// plain reset could discard it unread, and the client, unable to pair
	// the stream with its subscription, left Subscribe waiting out its
	// request timeout.
	us.SetReliableBoundary()
	// Counted before the client is told: a client that sees subscribed
	// sees it in the broker's statistics too.
	c.s.stats.Subscriptions.Add(1)
	err = ctl.reply(&wire.Subscribed{SubscriptionID: sub.ID()})
	if err == nil {
		err = ctl.flush() // the stream is not read again: nothing else is pending
	}
	if err != nil {
		c.s.stats.Subscriptions.Add(-1)
		sub.Close()
		release()
		us.CancelWrite(streamCodeClosing)
		return err
	}
	ctl.bs.CancelRead(codeNoErrorStream)
	ctl.bs.Close()
	c.runSubscription(ctl.ctx, sub, us)
	release()
	return errSubscribed
}

// quicSink writes a frame into the event stream if QUIC can take it
// without blocking: flow-control credit is available and the frame is small
// (transport.MaxTryWriteBytes). Larger frames go through the subscription's
// writer, whose blocking Write lets quic-go read them in place.
//
// Flow control is the peer's: a client that advertises huge windows and
// then acknowledges nothing closes the broker's congestion window while
// leaving every frame "writable", and what TryWrite takes waits, unsent,
// in quic-go's stream buffer, outside the subscription's bound. So at most
// maxDirectBacklog bytes go this way between two of the writer's blocking
// Writes (a Write returns once all before it is packed and sent); past
// that, frames wait in the subscription's queue, within its bound.
type quicSink struct {
	us     *quic.SendStream
	direct atomic.Int64 // bytes TryWrite took since the writer's last Write
}

// maxDirectBacklog bounds the bytes of a subscription that publishers
// write straight into its event stream (see quicSink).
const maxDirectBacklog = 64 << 10

func (q *quicSink) TryWrite(frame []byte) bool {
	if q.direct.Load()+int64(len(frame)) > maxDirectBacklog || !transport.TryWrite(q.us, frame) {
		return false
	}
	q.direct.Add(int64(len(frame)))
	return true
}

// written records that a blocking Write returned: what TryWrite took
// before it is sent.
func (q *quicSink) written() { q.direct.Store(0) }

// runSubscription drains the subscription's queue into its event stream
// until the client goes away, parent ends (the connection closes, or the
// token that subscribed expires: then the event stream is reset with
// streamCodeTokenExpired), or the stream ends (then the event stream is
// finished cleanly after its queued events). The caller has counted the
// subscription in the statistics; runSubscription uncounts it when it ends.
func (c *conn) runSubscription(parent context.Context, sub *broker.Subscription, us *quic.SendStream) {
	c.s.writers.Add(1)
	defer func() {
		sub.Close()
		c.s.stats.Subscriptions.Add(-1)
		c.s.writers.Add(-1)
	}()
	ctx, cancel := context.WithCancel(us.Context())
	defer cancel()
	// parent ends with the connection or when the token expires; a write
	// blocked on flow control does not watch ctx, so reset the stream too.
	stop := context.AfterFunc(parent, func() {
		if tokenExpired(parent) {
			us.CancelWrite(streamCodeTokenExpired) // before the loop resets it as closing
		}
		cancel()
	})
	defer stop()
	// From now on a publisher may write straight into the event stream when
	// nothing is queued for it (no goroutine hop on the hot path). With a
	// coalescing delay configured every frame goes through the writer, which
	// waits that long to pack more frames into each write.
	sink := &quicSink{us: us}
	if c.s.opts.Broker.Options().WriteMaxDelay <= 0 {
		sub.SetSink(sink)
	}
	buf := make([]byte, 0, c.s.opts.Broker.Options().WriteMaxBytes+4096)
	for {
		b, _, err := sub.NextBatch(ctx, buf)
		if err != nil {
			if errors.Is(err, broker.ErrSubscriptionEnded) && ctx.Err() == nil {
				us.Close() // stream deleted or broker draining: clean end
			} else {
				c.s.stats.SubscriberResets.Add(1)
				us.CancelWrite(streamCodeClosing)
			}
			break
		}
		if _, err := us.Write(b); err != nil {
			c.s.stats.SubscriberResets.Add(1)
			break
		}
		sink.written()
	}
	st := sub.Stats()
	if st.Dropped == 0 {
		c.log.Debug("subscription closed", "id", st.ID, "stream", st.Stream.String(), "delivered", st.Delivered)
		return
	}
	// Said at the end too: a subscription that drops and ends between two
	// of reportDrops's ticks would otherwise leave no line.
	c.log.Warn("subscription closed; its queue had dropped events", "subscription", st.ID, "stream", st.Stream.String(),
		"policy", st.Policy.String(), "delivered", st.Delivered, "dropped_total", st.Dropped)
}
