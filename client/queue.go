package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// Message is one queue delivery. Ack or Nack it exactly once.
type Message struct {
	Offset  uint64 // the record's offset in the stream
	Attempt int    // 1 for the first delivery, more after redeliveries
	Payload []byte
	co      *Consumer
}

// Ack confirms the message; it returns once the broker has recorded the ack
// (durably, for a durable stream), after which it is never redelivered.
// RequestTimeout bounds the ack's write and the wait for the answer; a
// Close of the consumer meanwhile ends it with ErrClosed.
func (m *Message) Ack(ctx context.Context) error { return m.co.ack(ctx, m.Offset) }

// AckAsync confirms the message without waiting for the broker: it returns
// once the ack is handed to the connection, as NATS's Ack and AMQP's
// basic.ack do. The broker records it as Ack would, but nothing tells the
// caller: an ack lost with the connection (or refused because the ack
// timeout had already taken the delivery back) leaves the record to be
// redelivered, which at-least-once handlers tolerate anyway. It is many
// times faster than Ack when one consumer acks in a loop. The error is the
// consumer's, when the ack could not be written.
func (m *Message) AckAsync() error { return m.co.ackAsync(m.Offset) }

// Nack hands the message back for redelivery (to any consumer) after delay.
func (m *Message) Nack(ctx context.Context, delay time.Duration) error {
	return m.co.nack(ctx, m.Offset, delay)
}

// ConsumerOption configures Consumer and Consume.
type ConsumerOption func(*consumerConfig)

type consumerConfig struct {
	name      string
	prefetch  uint64
	nackDelay time.Duration
	asyncAck  bool
	start     *wire.StartPosition // where the group starts if this join creates it
}

// WithConsumerName names the consumer (unique among the group's live
// members); the broker assigns a name otherwise.
func WithConsumerName(name string) ConsumerOption { return func(c *consumerConfig) { c.name = name } }

// WithPrefetch bounds the consumer's unacknowledged deliveries.
func WithPrefetch(n int) ConsumerOption {
	return func(c *consumerConfig) { c.prefetch = uint64(max(n, 1)) }
}

// WithNackDelay sets how long Consume waits before a message whose handler
// failed is redelivered. Default 1s.
func WithNackDelay(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.nackDelay = d }
}

// WithAsyncAck makes Consume ack with Message.AckAsync (fire-and-forget)
// instead of Message.Ack: several times the throughput, but an ack lost
// with the connection redelivers its record unnoticed. Default: Ack.
func WithAsyncAck() ConsumerOption { return func(c *consumerConfig) { c.asyncAck = true } }

// Consumer is one member of a consumer group on a stream: every record of
// the stream goes to exactly one member of the group. Read messages with
// Next or C and Ack each. Close leaves the group; messages not acked are
// redelivered to other members.
type Consumer struct {
	c        *Client
	str      *quic.Stream
	name     string
	prefetch int

	msgs   chan *Message // deliveries for Next and C, fed by pump
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // the reader goroutine has exited
	err    error         // why, written before done closes

	// wsem (capacity 1) is held by whoever writes to the stream: acks,
	// nacks and Close's queue_leave. A channel, not a mutex, so a caller
	// waiting for it gives up when its context ends or Close begins.
	wsem chan struct{}
	// leaving ends when Close begins (or the consumer's context does): a
	// write waiting for flow-control credit gives up, so Close never waits
	// behind an ack the broker does not read.
	leaving context.Context
	leave   context.CancelFunc
	buf     []byte
	nextID  atomic.Uint64
	mu      sync.Mutex
	wait    map[uint64]chan error

	// AckAsync's message, reused under wsem.
	asyncAck    wire.QueueAck
	asyncOffset [1]uint64

	closeOnce sync.Once
	closing   atomic.Bool // Close has begun
	finished  atomic.Bool // Close finished the stream after its queue_leave

	// Deliveries the reader could not put in msgs at once wait in backlog
	// for pump: the reader never blocks on the application, so it keeps
	// reading the broker's answers to acks and nacks. (msgs can be full
	// of copies whose ack timeout passed while the application was slow;
	// their redeliveries still arrive, and an ack waiting for its answer
	// behind them would never get it.)
	qmu     sync.Mutex
	backlog []*Message // at most backlogLimit(prefetch)
	// arrived holds the offsets delivered and not yet acked or nacked
	// (at most maxTracked): at Close, those the application took are
	// told apart from those it never saw (see handBack).
	arrived map[uint64]struct{}
	// released: Close has listed the deliveries the application took;
	// from then on nothing more is handed to it (deliver drops, pump has
	// stopped), since the broker takes every other one back unseen.
	released  bool
	stale     atomic.Uint64 // backlog entries dropped as stale copies
	more      chan struct{} // capacity 1: backlog grew
	stopPump  chan struct{} // closed by release
	pumpEnded chan struct{} // closed when pump returns
}

// backlogLimit bounds a consumer's backlog. The broker keeps at most
// prefetch records in flight to a consumer, so when an application falls
// further behind than this, the oldest copies it has not taken were
// delivered so long ago that their ack timeout has passed: the broker
// redelivers those records (to this consumer or another), and dropping the
// stale copy loses nothing.
func backlogLimit(prefetch int) int { return 2*max(prefetch, 1) + 16 }

// maxTracked bounds Consumer.arrived. Past it (an application that takes
// many messages and settles none), deliveries are not tracked, and at
// Close they count as unseen.
const maxTracked = 1 << 16

// Consumer joins group on namespace/stream (which must be a durable stream
// on the broker). It needs a broker that speaks the queue extension.
func (c *Client) Consumer(ctx context.Context, namespace, stream, group string, opts ...ConsumerOption) (*Consumer, error) {
	return c.consumerOn(ctx, c.eventSlot(nil), namespace, stream, group, opts)
}

// consumerOn is Consumer on slot's event connection.
func (c *Client) consumerOn(ctx context.Context, slot *connSlot, namespace, stream, group string, opts []ConsumerOption) (*Consumer, error) {
	co, err := c.consumer(ctx, slot, namespace, stream, group, opts)
	if err != nil && ctx.Err() == nil && !c.isClosed() && errors.Is(err, context.DeadlineExceeded) {
		// RequestTimeout ran out, not the caller's context: the broker
		// did not answer in time (an outage, a redial that is still
		// failing). That is a lost connection to the caller, whatever
		// step was under way, so Consume rejoins.
		var ce *ConnectionError
		if !errors.As(err, &ce) {
			err = &ConnectionError{Op: "queue join", Err: err}
		}
	}
	return co, err
}

func (c *Client) consumer(ctx context.Context, slot *connSlot, namespace, stream, group string, opts []ConsumerOption) (*Consumer, error) {
	var cfg consumerConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := c.bind(ctx, true)
	defer cancel()
	as, err := c.openAuthedStream(ctx, slot, "queue", "")
	if err != nil {
		return nil, err
	}
	str, r, flags := as.str, as.r, as.flags
	if flags&wire.CapQueue == 0 {
		abortStream(str)
		return nil, fmt.Errorf("felix: broker does not offer queues: %w", ErrUnsupported)
	}
	r.AllowFlags(wire.FlagQueueDelivery)
	join := &wire.QueueJoin{TenantID: c.opts.TenantID, Namespace: namespace, Stream: stream, Group: group}
	if cfg.name != "" {
		join.Consumer = &cfg.name
	}
	if cfg.prefetch > 0 {
		join.Prefetch = &cfg.prefetch
	}
	if cfg.start != nil {
		if flags&wire.CapManage == 0 {
			abortStream(str)
			return nil, fmt.Errorf("felix: broker cannot start a new group elsewhere than its oldest record (capability %#04x): %w", wire.CapManage, ErrUnsupported)
		}
		join.Start = cfg.start
	}
	frame, err := wire.AppendMessageFrame(nil, join)
	if err == nil {
		err = writeAll(ctx, str, frame)
	}
	var reply wire.Message
	if err == nil {
		reply, err = readMessage(ctx, str.SetReadDeadline, r)
	}
	if err != nil {
		abortStream(str)
		return nil, c.streamErr(ctx, "queue join", err)
	}
	joined, ok := reply.(*wire.QueueJoined)
	if !ok {
		abortStream(str)
		if e, isErr := reply.(*wire.ErrorMessage); isErr {
			return nil, refusal("queue join", e.Message)
		}
		return nil, &ProtocolError{Detail: fmt.Sprintf("unexpected %q in reply to queue_join", reply.Type())}
	}
	co := &Consumer{c: c, str: str, name: joined.Consumer, prefetch: int(joined.Prefetch),
		msgs: make(chan *Message, max(int(joined.Prefetch), 1)), done: make(chan struct{}), wait: map[uint64]chan error{},
		more: make(chan struct{}, 1), arrived: map[uint64]struct{}{}, stopPump: make(chan struct{}), pumpEnded: make(chan struct{})}
	co.ctx, co.cancel = context.WithCancel(c.ctx)
	co.wsem = make(chan struct{}, 1)
	co.leaving, co.leave = context.WithCancel(co.ctx)
	if !c.goTracked(func() { co.read(r) }) || !c.goTracked(co.pump) {
		co.cancel()
		abortStream(str)
		return nil, ErrClosed
	}
	return co, nil
}

// Name is the consumer's name in its group.
func (co *Consumer) Name() string { return co.name }

// Prefetch is the consumer's limit of unacknowledged deliveries.
func (co *Consumer) Prefetch() int { return co.prefetch }

// read receives deliveries and replies until the stream ends.
func (co *Consumer) read(r *wire.Reader) {
	// The reader never blocks but on the stream: end it when the consumer
	// or the client closes.
	stop := context.AfterFunc(co.ctx, func() { co.str.CancelRead(streamCodeCancel) })
	defer stop()
	var ds []wire.QueueDelivery
	err := func() error {
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return err
			}
			switch f.Flags {
			case wire.FlagQueueDelivery:
				if ds, err = wire.DecodeQueueDeliveries(f.Payload, ds); err != nil {
					return &ProtocolError{Detail: err.Error()}
				}
				for _, d := range ds {
					co.deliver(&Message{Offset: d.Offset, Attempt: int(d.Attempt), Payload: append([]byte(nil), d.Payload...), co: co})
				}
			case 0:
				msg, err := wire.DecodeMessage(f.Payload)
				if err != nil {
					return &ProtocolError{Detail: err.Error()}
				}
				switch m := msg.(type) {
				case *wire.QueueOK:
					co.resolve(m.RequestID, nil)
				case *wire.QueueError:
					if m.RequestID == nil {
						return &ServerError{Message: m.Message}
					}
					co.resolve(*m.RequestID, &ServerError{Code: m.Code, Message: m.Message})
				case *wire.ErrorMessage:
					return &ServerError{Message: m.Message}
				default:
					return &ProtocolError{Detail: fmt.Sprintf("unexpected %q on a queue stream", m.Type())}
				}
			default:
				return &ProtocolError{Detail: fmt.Sprintf("unexpected frame flags %#04x on a queue stream", f.Flags)}
			}
		}
	}()
	var se *ServerError
	switch {
	case co.ctx.Err() != nil || co.c.isClosed() || co.closing.Load():
		err = ErrClosed
	case errors.As(err, &se) && se.Message == groupDeletedMessage:
		// Not a lost connection: rejoining (Consume) would create the
		// group again at the oldest record and hand everything over anew.
	default:
		err = &ConnectionError{Op: "queue", Err: err}
	}
	co.err = err
	co.mu.Lock()
	waiters := co.wait
	co.wait = nil
	co.mu.Unlock()
	for _, ch := range waiters {
		ch <- err
	}
	co.str.CancelRead(streamCodeCancel)
	if !co.finished.Load() { // a reset would discard the queue_leave not yet sent
		co.str.CancelWrite(streamCodeCancel)
	}
	close(co.done)
}

// deliver hands m to msgs, or to the backlog when msgs is full. It never
// blocks.
func (co *Consumer) deliver(m *Message) {
	co.qmu.Lock()
	defer co.qmu.Unlock()
	if co.released {
		return // Close gave it back unseen (queue_leave)
	}
	if len(co.arrived) < maxTracked {
		co.arrived[m.Offset] = struct{}{}
	}
	if len(co.backlog) == 0 {
		select {
		case co.msgs <- m:
			return
		default:
		}
	}
	if len(co.backlog) >= backlogLimit(co.prefetch) {
		// Drop the oldest copy pump is not already sending (index 0 may be
		// in its hands).
		if off := co.backlog[1].Offset; !slices.ContainsFunc(co.backlog[2:], func(n *Message) bool { return n.Offset == off }) {
			delete(co.arrived, off) // unless a newer copy waits behind it
		}
		co.backlog = slices.Delete(co.backlog, 1, 2)
		co.stale.Add(1)
	}
	co.backlog = append(co.backlog, m)
	select {
	case co.more <- struct{}{}:
	default:
	}
}

// pump moves the backlog into msgs, in order, until the consumer ends
// or Close stops it.
func (co *Consumer) pump() {
	defer close(co.pumpEnded)
	for {
		select {
		case <-co.more:
		case <-co.done:
			return
		case <-co.stopPump:
			return
		}
		for {
			co.qmu.Lock()
			if len(co.backlog) == 0 {
				co.backlog = nil
				co.qmu.Unlock()
				break
			}
			m := co.backlog[0] // popped once sent: deliver sees a backlog till then, and queues behind m
			co.qmu.Unlock()
			select {
			case co.msgs <- m:
			case <-co.done:
				return
			case <-co.stopPump:
				return // m stays in the backlog: not taken
			}
			co.qmu.Lock()
			co.backlog[0] = nil
			co.backlog = co.backlog[1:]
			co.qmu.Unlock()
		}
	}
}

func (co *Consumer) resolve(id uint64, err error) {
	co.mu.Lock()
	ch := co.wait[id]
	delete(co.wait, id)
	co.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// request writes a queue_ack/queue_nack of offset carrying a fresh
// request id and waits for the broker's answer; RequestTimeout bounds
// both. A written request settles the offset: Close does not name it in
// its queue_leave (one that could not be written is named, so it still
// counts as an attempt). Settling and writing happen under wsem, as
// Close's listing and queue_leave do, so the broker reads the request
// before the leave or the leave names it.
func (co *Consumer) request(ctx context.Context, offset uint64, build func(id uint64) wire.Message) error {
	ctx, cancel := co.c.bind(ctx, true)
	defer cancel()
	id := co.nextID.Add(1)
	ch := make(chan error, 1)
	co.mu.Lock()
	if co.wait == nil {
		co.mu.Unlock()
		return co.err
	}
	co.wait[id] = ch
	co.mu.Unlock()
	if err := co.settle(ctx, offset, build(id)); err != nil {
		co.resolve(id, nil)
		if co.closing.Load() {
			return ErrClosed // Close interrupted the write, or came first
		}
		return co.c.streamErr(ctx, "queue", err)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		co.resolve(id, nil) // forget it; a late answer is dropped
		return co.c.ctxErr(ctx)
	}
}

// ackAsync writes a queue_ack of offset without a request id: the broker
// does not answer it. Settled and written under wsem, as request does.
// When flow control has room the ack is queued without blocking, which
// costs no context, timer or stream deadline; only a stream short of
// credit takes the blocking write, bounded by RequestTimeout.
func (co *Consumer) ackAsync(offset uint64) error {
	co.mu.Lock()
	closed := co.wait == nil
	co.mu.Unlock()
	if closed {
		return co.err // written before wait was cleared; read only then
	}
	if err := co.lockWrite(co.leaving); err != nil {
		return err
	}
	defer co.unlockWrite()
	if err := co.ctx.Err(); err != nil { // closed: write nothing, as the bound write would
		return co.c.streamErr(co.ctx, "queue", err)
	}
	co.asyncOffset[0] = offset
	co.asyncAck.Offsets = co.asyncOffset[:]
	if queued, err := co.trySettle(offset, &co.asyncAck); queued || err != nil {
		return co.c.streamErr(co.ctx, "queue", err)
	}
	ctx, cancel := co.c.bind(co.ctx, true) // a stalled broker holds the write for RequestTimeout at most
	defer cancel()
	if err := co.writeSettled(ctx, offset); err != nil {
		if co.closing.Load() {
			return ErrClosed // Close interrupted the write
		}
		return co.c.streamErr(ctx, "queue", err)
	}
	return nil
}

// lockWrite takes wsem, unless ctx ends or Close begins first (then
// ErrClosed).
func (co *Consumer) lockWrite(ctx context.Context) error {
	select {
	case co.wsem <- struct{}{}:
		return nil
	default:
	}
	select {
	case co.wsem <- struct{}{}:
		return nil
	case <-co.leaving.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (co *Consumer) unlockWrite() { <-co.wsem }

// settle writes m, the ack or nack of offset, under wsem, settling offset
// first (a nacked record can be redelivered to this consumer as soon as
// the broker reads the nack); if the write fails, offset is unsettled.
func (co *Consumer) settle(ctx context.Context, offset uint64, m wire.Message) error {
	if err := co.lockWrite(ctx); err != nil {
		return err
	}
	defer co.unlockWrite()
	if err := ctx.Err(); err != nil { // write nothing, as writeAll would
		return err
	}
	if queued, err := co.trySettle(offset, m); queued || err != nil {
		return err
	}
	return co.writeSettled(ctx, offset)
}

// trySettle settles offset, encodes m into buf and queues it on the stream
// if that does not block (queued). Otherwise the frame stays in buf for
// writeSettled, or, on an error, offset is unsettled. The caller holds
// wsem, under which every write to the stream is made, so a frame queued
// here never overtakes one still being written (quic-go's TryWriteAll
// also refuses, with ErrWouldBlock, while a blocking Write is under way).
func (co *Consumer) trySettle(offset uint64, m wire.Message) (queued bool, err error) {
	co.settled(offset)
	if co.buf, err = wire.AppendMessageFrame(co.buf[:0], m); err != nil {
		co.unsettled(offset)
		return false, err
	}
	return transport.TryWrite(co.str, co.buf), nil
}

// writeSettled writes the frame trySettle left in buf, until ctx ends or
// Close begins; if the write fails, offset is unsettled. A write cut off
// after part of the frame would leave a stream nothing more can be framed
// on, so its sending side is then reset: the broker ends the membership
// (its deliveries go back to the group) and the consumer ends with a
// *ConnectionError (Consume rejoins). quic-go v0.65 does not cut writes
// as small as an ack (once part of one is sent it buffers the rest), so
// this guards against a later quic-go. The caller holds wsem.
func (co *Consumer) writeSettled(ctx context.Context, offset uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(co.leaving, cancel)
	defer func() { stop(); cancel() }()
	var n int
	err := withDeadline(ctx, co.str.SetWriteDeadline, func() (err error) {
		n, err = co.str.Write(co.buf)
		return err
	})
	if err != nil {
		co.unsettled(offset)
		if n > 0 {
			co.str.CancelWrite(streamCodeCancel)
		}
	}
	return err
}

func (co *Consumer) ack(ctx context.Context, offset uint64) error {
	return co.request(ctx, offset, func(id uint64) wire.Message {
		return &wire.QueueAck{Offsets: []uint64{offset}, RequestID: &id}
	})
}

func (co *Consumer) nack(ctx context.Context, offset uint64, delay time.Duration) error {
	ms := uint64(max(delay, 0) / time.Millisecond)
	return co.request(ctx, offset, func(id uint64) wire.Message {
		return &wire.QueueNack{Offset: offset, DelayMs: &ms, RequestID: &id}
	})
}

// settled forgets offset: the application acked or nacked it.
func (co *Consumer) settled(offset uint64) {
	co.qmu.Lock()
	delete(co.arrived, offset)
	co.qmu.Unlock()
}

// unsettled lists offset again: its ack or nack was not sent.
func (co *Consumer) unsettled(offset uint64) {
	co.qmu.Lock()
	if !co.released && len(co.arrived) < maxTracked {
		co.arrived[offset] = struct{}{}
	}
	co.qmu.Unlock()
}

// Next returns the next delivery, waiting until one arrives, ctx ends, or
// the consumer ends (then Err's error).
func (co *Consumer) Next(ctx context.Context) (*Message, error) {
	select {
	case m := <-co.msgs:
		return m, nil
	default:
	}
	select {
	case m := <-co.msgs:
		return m, nil
	case <-co.done:
		select {
		case m := <-co.msgs:
			return m, nil
		default:
		}
		return nil, co.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// C is the channel form of Next; it is not closed (watch Done).
func (co *Consumer) C() <-chan *Message { return co.msgs }

// StaleDropped counts deliveries dropped unseen because the application
// fell more than about twice the prefetch behind: copies whose ack timeout
// had passed, which the broker delivers again (see backlogLimit).
func (co *Consumer) StaleDropped() uint64 { return co.stale.Load() }

// Done is closed when the consumer has ended; Err says why.
func (co *Consumer) Done() <-chan struct{} { return co.done }

// Err is why the consumer ended (nil while it runs).
func (co *Consumer) Err() error {
	select {
	case <-co.done:
		return co.err
	default:
		return nil
	}
}

// Close leaves the group: deliveries not yet acked go back to the group.
// Those the application took and did not ack or nack count as a delivery
// attempt; those it never took (buffered, or still on their way) do not
// (queue_leave), so closing a consumer with a full prefetch buffer does
// not bring records nobody saw closer to the dead-letter stream. Acks and
// nacks still waiting to be written (a broker that stopped reading) give
// up with ErrClosed: Close does not wait behind them.
func (co *Consumer) Close() error {
	co.closeOnce.Do(func() {
		co.closing.Store(true)
		co.leave() // an ack or nack waiting on flow control gives up
		close(co.stopPump)
		<-co.pumpEnded        // its message in hand is sent, or stays in the backlog
		co.wsem <- struct{}{} // no ack or nack is half way between settled and written
		sent := co.handBack(co.release())
		co.unlockWrite()
		if sent {
			// The broker ends the stream once it has read the leave: wait
			// for that (the reader sees the end), for a bounded time.
			t := time.NewTimer(handBackTimeout)
			select {
			case <-co.done:
			case <-t.C:
			}
			t.Stop()
		}
		co.cancel()
		co.str.CancelRead(streamCodeCancel)
		if !co.finished.Load() {
			co.str.CancelWrite(streamCodeCancel)
		}
	})
	<-co.done
	return nil
}

// groupDeletedMessage is the broker's queue_error (without request_id)
// to the consumers of a group deleted with queue_delete.
const groupDeletedMessage = "queue group closed: group deleted"

// handBackTimeout bounds the write of Close's queue_leave.
const handBackTimeout = time.Second

// handBack tells the broker, with queue_leave, which deliveries the
// application took and has not settled (they count as attempts, as on any
// leave); every other delivery in flight to this consumer, buffered here
// or still on its way, goes back without counting one. It then finishes
// the stream, so the broker reads the message before it sees the consumer
// leave, and reports whether it did. The caller holds wsem.
func (co *Consumer) handBack(seen []uint64) bool {
	if co.ctx.Err() != nil {
		return false // closed already, or the client is closing
	}
	frame, err := wire.AppendMessageFrame(nil, &wire.QueueLeave{Offsets: seen})
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(co.ctx, handBackTimeout)
	defer cancel()
	if writeAll(ctx, co.str, frame) != nil || co.str.Close() != nil {
		return false
	}
	co.finished.Store(true)
	return true
}

// release stops handing deliveries to the application (later arrivals
// are dropped; Close has stopped pump), drains the buffer and returns the
// offsets that arrived, are not settled, and are neither in the buffer nor
// in the backlog: the ones the application took. Whatever it did not take
// is given back unseen, so it must never get it after this.
func (co *Consumer) release() []uint64 {
	co.qmu.Lock()
	defer co.qmu.Unlock()
	co.released = true
	untaken := map[uint64]bool{}
	for drained := false; !drained; {
		select {
		case m := <-co.msgs:
			untaken[m.Offset] = true
		default:
			drained = true
		}
	}
	for _, m := range co.backlog {
		untaken[m.Offset] = true
	}
	offsets := []uint64{}
	for off := range co.arrived {
		if !untaken[off] {
			offsets = append(offsets, off)
		}
	}
	slices.Sort(offsets)
	return offsets
}

// Consume runs handler for every message of group on namespace/stream
// until ctx ends: a nil return acks the message, an error nacks it (it is
// redelivered after the nack delay). A lost connection is rejoined with
// backoff. It returns ctx's error, the broker's refusal to join, or, when
// the group is deleted (DeleteQueueGroup), a *ServerError saying so.
func (c *Client) Consume(ctx context.Context, namespace, stream, group string, handler func(context.Context, *Message) error, opts ...ConsumerOption) error {
	cfg := consumerConfig{nackDelay: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	var slot *connSlot // where the consumer was: a lost connection is redialed there
	for failures := 0; ; failures++ {
		slot = c.eventSlot(slot)
		co, err := c.consumerOn(ctx, slot, namespace, stream, group, opts)
		if err != nil {
			if ctx.Err() != nil || !errors.Is(err, ErrDisconnected) || c.opts.Reconnect.Disabled {
				return err
			}
			if err := sleep(ctx, c.backoff(failures)); err != nil {
				return err
			}
			continue
		}
		failures = 0
		err = co.run(ctx, handler, cfg)
		co.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, ErrDisconnected) || c.opts.Reconnect.Disabled {
			return err
		}
	}
}

func (co *Consumer) run(ctx context.Context, handler func(context.Context, *Message) error, cfg consumerConfig) error {
	for {
		m, err := co.Next(ctx)
		if err != nil {
			return err
		}
		switch herr := handler(ctx, m); {
		case herr != nil:
			err = m.Nack(ctx, cfg.nackDelay)
		case cfg.asyncAck:
			err = m.AckAsync()
		default:
			err = m.Ack(ctx)
		}
		if err != nil && !isServerReply(err) {
			return err
		}
	}
}

// GroupStats are a consumer group's counters (see queue.Stats). Released
// and Lost are zero from a broker that does not report them.
type GroupStats struct {
	Members, InFlight, Pending, Lag, Cursor                       uint64
	Delivered, Acked, Nacked, Redelivered, TimedOut, DeadLettered uint64
	Released, Lost                                                uint64
}

// QueueStats returns the counters of group on namespace/stream. The
// request goes over the client's control (cache) streams. A group that does
// not exist (never joined, or deleted) returns an error matching
// ErrQueueGroupNotFound; asking does not create it.
func (c *Client) QueueStats(ctx context.Context, namespace, stream, group string) (GroupStats, error) {
	reply, err := c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.QueueStats{TenantID: c.opts.TenantID, Namespace: namespace, Stream: stream, Group: group, RequestID: id}
	})
	if err != nil {
		return GroupStats{}, groupNotFound(err)
	}
	v, ok := reply.(*wire.QueueStatsValue)
	if !ok {
		return GroupStats{}, unexpected(reply, "queue_stats")
	}
	opt := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	return GroupStats{Members: v.Members, InFlight: v.InFlight, Pending: v.Pending, Lag: v.Lag, Cursor: v.Cursor,
		Delivered: v.Delivered, Acked: v.Acked, Nacked: v.Nacked, Redelivered: v.Redelivered, TimedOut: v.TimedOut,
		DeadLettered: v.DeadLettered, Released: opt(v.Released), Lost: opt(v.Lost)}, nil
}

// ErrQueueGroupNotFound: DeleteQueueGroup or QueueStats found no such
// group.
var ErrQueueGroupNotFound = errors.New("felix: queue group not found")

// groupNotFound makes a broker's not_found answer match
// ErrQueueGroupNotFound.
func groupNotFound(err error) error {
	var se *ServerError
	if errors.As(err, &se) && se.Code == "not_found" {
		return fmt.Errorf("%w: %s", ErrQueueGroupNotFound, se.Message)
	}
	return err
}

// DeleteQueueGroup deletes group on namespace/stream, as `nats consumer rm`:
// its consumers end (their Next returns a *ServerError saying "queue group
// closed: group deleted", which is not ErrDisconnected, so Consume returns
// it instead of rejoining and so re-creating the group), its state (acks,
// attempt counts) is removed, and the name then starts a new group at the stream's oldest record. It
// needs the stream.manage permission. A group the broker does not know
// returns an error matching ErrQueueGroupNotFound.
func (c *Client) DeleteQueueGroup(ctx context.Context, namespace, stream, group string) error {
	reply, err := c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.QueueDelete{TenantID: c.opts.TenantID, Namespace: namespace, Stream: stream, Group: group, RequestID: id}
	})
	if err != nil {
		return groupNotFound(err)
	}
	if _, ok := reply.(*wire.QueueOK); !ok {
		return unexpected(reply, "queue_delete")
	}
	return nil
}
