package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// Event is one delivered event.
type Event struct {
	Namespace string
	Stream    string
	Payload   []byte // owned by the receiver
	Offset    uint64 // valid when HasOffset
	HasOffset bool   // the broker sent offsets (see Client.Subscribe)
}

// Subscription receives the events of one stream. Read them with Next or
// from C. It survives lost connections (see Client.Subscribe). Close it
// when done.
type Subscription struct {
	c         *Client
	namespace string
	stream    string
	cfg       subscribeConfig

	id     atomic.Uint64
	missed atomic.Uint64 // events known skipped (gaps in offsets)
	queue  *eventQueue
	err    error // why the subscription ended; written before queue.close()

	chOnce sync.Once     // C's forwarder
	ch     chan Event    // C's channel, fed by the forwarder
	chDone chan struct{} // closed when the forwarder exits

	ctx        context.Context // ends with Close
	cancel     context.CancelFunc
	handlerErr error         // what cfg.handler returned to stop; owned by the reader
	done       chan struct{} // closed when the reader goroutine exits

	mu sync.Mutex
	rs *quic.ReceiveStream // current event stream, for Close to cancel

	// Owned by the reader goroutine.
	next     uint64    // the offset expected next (resume point), when haveNext
	haveNext bool      // events carry offsets, or the subscription started at one
	received bool      // some event has been delivered
	emitted  uint64    // events delivered, to tell a productive attachment
	slot     *connSlot // the event connection's slot, for resubscribing (pickSlot)
	scratch  []Event   // one frame's events, reused
}

// attachment is a subscription established on the broker.
type attachment struct {
	id    uint64
	rs    *quic.ReceiveStream
	flags uint16
	slot  *connSlot // the event connection's slot
}

// Subscribe subscribes to namespace/stream of the client's tenant. It
// returns once the broker has confirmed the subscription and its event
// stream is attached; events published after that are delivered.
//
// Errors: a broker refusal is a *ServerError (e.g. "stream not found: …"),
// an out-of-range start a *CursorError, FromOffset/FromEarliest against a
// broker without offsets ErrUnsupported, as FromTime against one without
// the start-time extension.
//
// When the connection or event stream is lost, the subscription
// resubscribes by itself (unless reconnection is disabled), on a new
// connection if needed. A subscription whose events carry offsets (every
// stream of a Felix broker; durable streams only on a broker without the
// in-memory offsets extension) resumes from the next offset it expected:
// nothing is lost while the broker still retains that offset (on disk, or
// in an in-memory stream's replay ring), and if it no longer does, it
// resumes from the oldest offset retained and counts the events skipped in
// Missed. Without offsets, delivery is at-most-once across such a gap:
// events published while no subscription existed are not delivered. A
// subscription that has received nothing yet starts again where it asked
// to (FromOffset, FromEarliest, FromTime: the same time, which names the
// same events as long as none was delivered). Next keeps working
// throughout.
func (c *Client) Subscribe(ctx context.Context, namespace, stream string, opts ...SubscribeOption) (*Subscription, error) {
	return c.subscribe(ctx, namespace, stream, nil, opts)
}

// SubscribeFunc subscribes to namespace/stream as Subscribe does and calls
// handler with every event, in order, on the subscription's own goroutine.
// It returns once the broker has confirmed the subscription. A non-nil
// error from handler ends the subscription: Done is closed and Err returns
// that error. Close (and Client.Close) waits for a running handler to
// return, so calling either from inside handler would wait forever: return
// an error instead, or close from another goroutine. Do not
// use Next or C on such a subscription.
//
// It is the cheapest way to receive: each event goes from the stream
// reader straight to handler, with no buffer and no hand-off between
// goroutines. While handler runs, nothing more is read from the stream: a
// slow handler backs up into QUIC flow control and then into the broker's
// queue for this subscriber, whose policy applies (drop_new and drop_old
// count their drops; block slows the stream's publishers). Event payloads
// belong to handler and may be kept. Lost connections are resubscribed as
// with Subscribe.
func (c *Client) SubscribeFunc(ctx context.Context, namespace, stream string, handler func(Event) error, opts ...SubscribeOption) (*Subscription, error) {
	if handler == nil {
		return nil, errors.New("felix: SubscribeFunc needs a handler")
	}
	return c.subscribe(ctx, namespace, stream, handler, opts)
}

// subscribe subscribes, registers the subscription with the client and
// starts its reader; handler (SubscribeFunc) replaces the buffer when set.
func (c *Client) subscribe(ctx context.Context, namespace, stream string, handler func(Event) error, opts []SubscribeOption) (*Subscription, error) {
	cfg := subscribeConfig{buffer: c.opts.SubscriptionBuffer}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.buffer <= 0 {
		cfg.buffer = c.opts.SubscriptionBuffer // unused with a handler: the queue stays empty
	}
	cfg.handler = handler
	if c.isClosed() {
		return nil, ErrClosed
	}
	if err := c.reserveSubID(cfg.id); err != nil {
		return nil, err
	}
	att, err := c.subscribeRetry(ctx, namespace, stream, cfg)
	if err != nil {
		c.releaseSubID(cfg.id)
		return nil, err
	}
	s := &Subscription{
		c: c, namespace: namespace, stream: stream, cfg: cfg,
		queue: newEventQueue(cfg.buffer),
		done:  make(chan struct{}),
		rs:    att.rs,
		slot:  att.slot,
	}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	s.id.Store(att.id)
	if cfg.start.Kind == wire.StartOffset {
		// The first event is expected there: one past it is a known gap
		// (records the broker no longer retained when it replayed).
		s.next, s.haveNext = cfg.start.Offset, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		att.rs.CancelRead(streamCodeCancel)
		if cfg.id != nil {
			delete(c.subIDs, *cfg.id)
		}
		return nil, ErrClosed
	}
	c.subs[s] = struct{}{}
	c.wg.Go(func() { s.run(att) })
	return s, nil
}

// ErrSubscriptionIDInUse: WithSubscriptionID asked for an id that another
// subscription of the same client is using. The broker pairs each event
// stream with its subscription by id alone, so two subscriptions with one
// id on a connection could receive each other's events.
var ErrSubscriptionIDInUse = errors.New("felix: subscription id already used by another subscription of this client")

// reserveSubID claims an id asked for with WithSubscriptionID (nil: none)
// for one subscription, until releaseSubID or the subscription's end.
func (c *Client) reserveSubID(id *uint64) error {
	if id == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.subIDs[*id]; taken {
		return fmt.Errorf("%w: %d", ErrSubscriptionIDInUse, *id)
	}
	c.subIDs[*id] = struct{}{}
	return nil
}

// staleSubID reports whether the broker refused a subscribe because the
// chosen id is live on the connection. Only the subscription that holds
// the id in this client (reserveSubID) asks for it, so the broker's holder
// is one this client has closed and the broker has not reaped yet: an
// event stream cancelled by the client ends on the broker a moment later.
func staleSubID(err error) bool {
	var se *ServerError
	return errors.As(err, &se) && strings.HasSuffix(se.Message, wire.SubscriptionIDInUse)
}

func (c *Client) releaseSubID(id *uint64) {
	if id == nil {
		return
	}
	c.mu.Lock()
	delete(c.subIDs, *id)
	c.mu.Unlock()
}

// subscribeRetry runs subscribeOnce, retrying with backoff while the
// connection is being re-established, or the broker still holds a chosen
// id this client has released, and ctx (bounded by the request timeout)
// allows.
func (c *Client) subscribeRetry(ctx context.Context, ns, stream string, cfg subscribeConfig) (*attachment, error) {
	ctx, cancel := c.bind(ctx, true)
	defer cancel()
	var slot *connSlot
	for attempt := 0; ; attempt++ {
		slot = c.eventSlot(slot)
		att, err := c.subscribeOnce(ctx, slot, ns, stream, cfg.start, cfg.id)
		switch {
		case err == nil:
			return att, nil
		case staleSubID(err):
		case !errors.Is(err, ErrDisconnected) || c.opts.Reconnect.Disabled:
			return nil, err
		}
		if sleep(ctx, c.backoff(attempt+1)) != nil {
			return nil, c.ctxErr(ctx)
		}
	}
}

// subscribeOnce runs the subscribe exchange on slot's event connection
// (see eventSlot): a new bidirectional stream carrying auth, then
// subscribe (send side finished), one reply, and the pairing with the
// broker-opened event stream.
func (c *Client) subscribeOnce(ctx context.Context, slot *connSlot, ns, stream string, start wire.StartPosition, id *uint64) (*attachment, error) {
	ctx, cancel := c.bind(ctx, true)
	defer cancel()
	return retryUnused(func() (*attachment, *slotConn, error) {
		sc, err := slot.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		att, err := c.subscribeOn(ctx, sc, ns, stream, start, id)
		if att != nil {
			att.slot = slot
		}
		return att, sc, err
	})
}

// eventSlot picks the event connection for a subscription, consumer or
// service that was on prev (nil: a new one), see pickSlot.
func (c *Client) eventSlot(prev *connSlot) *connSlot {
	return pickSlot(c.eventSlots, &c.nextEvent, prev)
}

// subscribeOn is subscribeOnce on the connection sc.
func (c *Client) subscribeOn(ctx context.Context, sc *slotConn, ns, stream string, start wire.StartPosition, id *uint64) (*attachment, error) {
	token, err := c.token(ctx)
	if err != nil {
		return nil, c.streamErr(ctx, "subscribe", err)
	}
	str, err := sc.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, c.streamErr(ctx, "subscribe", err)
	}
	defer str.CancelRead(streamCodeCancel) // one reply is all we read
	r := wire.NewReader(str, c.opts.MaxFrameBytes)
	flags, err := c.authenticate(ctx, str, r, token)
	if err != nil {
		str.CancelWrite(streamCodeCancel)
		return nil, c.streamErr(ctx, "subscribe", err)
	}
	req := &wire.Subscribe{TenantID: c.opts.TenantID, Namespace: ns, Stream: stream, SubscriptionID: id}
	if start.Kind != wire.StartLatest {
		if !wire.Supports(flags, wire.FlagEventBatchOffsets) {
			str.CancelWrite(streamCodeCancel)
			return nil, fmt.Errorf("%w: subscribe from an offset needs EVENT_BATCH_OFFSETS (0x0020); broker flags %#04x", ErrUnsupported, flags)
		}
		if start.Kind == wire.StartTime && flags&wire.CapStartTime == 0 {
			str.CancelWrite(streamCodeCancel)
			return nil, fmt.Errorf("%w: subscribe from a time needs the start-time extension (%#04x); broker flags %#04x",
				ErrUnsupported, wire.CapStartTime, flags)
		}
		req.Start = &start
	}
	frame, err := wire.AppendMessageFrame(nil, req)
	if err != nil {
		str.CancelWrite(streamCodeCancel)
		return nil, err
	}
	if err := writeAll(ctx, str, frame); err != nil {
		str.CancelWrite(streamCodeCancel)
		return nil, c.streamErr(ctx, "subscribe", err)
	}
	_ = str.Close() // one subscribe per stream: finish our side
	m, err := readMessage(ctx, str.SetReadDeadline, r)
	if err != nil {
		return nil, c.streamErr(ctx, "subscribe", err)
	}
	switch m := m.(type) {
	case *wire.Subscribed:
		rs, err := sc.router.claim(ctx, m.SubscriptionID)
		if err != nil {
			return nil, c.streamErr(ctx, "subscribe", fmt.Errorf("event stream for subscription %d: %w", m.SubscriptionID, err))
		}
		return &attachment{id: m.SubscriptionID, rs: rs, flags: flags}, nil
	case *wire.SubscribeCursorError:
		return nil, &CursorError{Reason: m.Reason, Requested: m.Requested, Available: m.Available}
	case *wire.ErrorMessage:
		return nil, refusal("subscribe", m.Message)
	default:
		return nil, &ProtocolError{Detail: fmt.Sprintf("unexpected %q in reply to subscribe", m.Type())}
	}
}

// ID is the broker's id of the subscription (it changes after an automatic
// resubscribe).
func (s *Subscription) ID() uint64 { return s.id.Load() }

// Missed is the number of events this subscription is known to have
// skipped: gaps in the offsets of the events delivered, whether the broker
// dropped them (a slow subscriber under drop_new or drop_old) or no longer
// retained them when the subscription started (FromOffset) or resumed.
// Offsets delivered again are not gaps. It is a lower bound: events
// without offsets, and those lost when a broker restart reset an in-memory
// stream's offsets, cannot be counted.
func (s *Subscription) Missed() uint64 { return s.missed.Load() }

// Next returns the next event, waiting until one arrives or ctx ends. After
// the subscription ends it returns Err's error (ErrClosed after Close).
// Several goroutines may call Next at once: each event goes to one of
// them, and all return when the subscription ends.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	ev, ok, err := s.queue.pop(ctx)
	if err != nil {
		return Event{}, err
	}
	if !ok {
		<-s.done // s.err is written before the queue closes; done follows
		return Event{}, s.err
	}
	return ev, nil
}

// C returns a channel of events, the alternative to Next (do not mix the
// two). It is closed when the subscription ends; Err then says why. The
// first call starts a goroutine that moves events from the subscription's
// buffer to the channel, so Next is slightly cheaper.
func (s *Subscription) C() <-chan Event {
	s.chOnce.Do(func() {
		s.ch = make(chan Event)
		s.chDone = make(chan struct{})
		forward := func() {
			defer close(s.chDone)
			defer close(s.ch)
			for {
				ev, ok, err := s.queue.pop(s.ctx)
				if err != nil || !ok {
					return
				}
				select {
				case s.ch <- ev:
				case <-s.ctx.Done():
					return
				}
			}
		}
		// Tracked, so Client.Close also waits for it; after Close the
		// channel is simply closed.
		if !s.c.goTracked(forward) {
			close(s.ch)
			close(s.chDone)
		}
	})
	return s.ch
}

// Err is why the subscription ended: nil while it runs, ErrClosed after
// Close or Client.Close, or the error that ended it (e.g. a *ServerError
// when resubscribing was refused).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Done is closed when the subscription has ended (Err says why).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Close ends the subscription: its event stream is cancelled (so the
// broker reaps it) and its goroutine has exited when Close returns.
// Buffered events are discarded: Next then returns Err's error, and C is
// closed. Safe to call more than once.
func (s *Subscription) Close() error {
	s.cancelReader()
	<-s.done
	s.queue.discard()
	s.chOnce.Do(func() { // no forwarder may start after Close: C is closed
		s.ch = make(chan Event)
		close(s.ch)
	})
	if s.chDone != nil {
		<-s.chDone
	}
	return nil
}

// cancelReader stops the reader goroutine without waiting for it.
func (s *Subscription) cancelReader() {
	s.cancel()
	s.mu.Lock()
	if s.rs != nil {
		s.rs.CancelRead(streamCodeCancel)
	}
	s.mu.Unlock()
}

// run is the subscription's goroutine: it reads the event stream into the
// buffer and resubscribes when the stream is lost.
func (s *Subscription) run(att *attachment) {
	defer func() {
		s.mu.Lock()
		if s.rs != nil {
			s.rs.CancelRead(streamCodeCancel)
			s.rs = nil
		}
		s.mu.Unlock()
		s.c.mu.Lock()
		delete(s.c.subs, s)
		if s.cfg.id != nil {
			delete(s.c.subIDs, *s.cfg.id)
		}
		s.c.mu.Unlock()
		if s.err == ErrClosed {
			s.queue.discard() // Close or Client.Close: buffered events go
		}
		s.queue.close()
		close(s.done)
	}()
	failures := 0 // consecutive attachments that delivered nothing
	for {
		emitted, attached := s.emitted, time.Now()
		err := s.pump(att)
		// Whatever ended the reading (a bad frame too), the broker must
		// reap this subscription: it is not read again.
		att.rs.CancelRead(streamCodeCancel)
		if s.emitted != emitted || time.Since(attached) >= s.c.opts.Reconnect.MaxBackoff {
			failures = 0 // a working attachment: resubscribe at once
		}
		if s.handlerErr != nil {
			s.err = s.handlerErr
			return
		}
		if s.ctx.Err() != nil {
			s.err = ErrClosed
			return
		}
		s.c.log.Debug("felix subscription stream ended; resubscribing", "stream", s.namespace+"/"+s.stream,
			"subscription_id", att.id, "err", err)
		if s.c.opts.Reconnect.Disabled {
			s.err = &ConnectionError{Op: "subscription", Err: cmpErr(err, errNoReconnect)}
			return
		}
		att, failures, err = s.resubscribe(failures)
		if err != nil {
			if s.ctx.Err() != nil {
				err = ErrClosed
			}
			s.err = err
			return
		}
	}
}

// cmpErr returns err, or def when err is nil.
func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// tooOldRetries bounds how many times a resubscribe follows the broker's
// oldest retained offset (too_old) before it goes on from the tail.
const tooOldRetries = 3

// resubscribeWait waits out a resubscribe's backoff (replaced in tests).
var resubscribeWait = sleep

// resubscribe re-establishes the subscription with backoff until it
// succeeds, the broker refuses it, or the subscription is closed. failures
// counts the attempts (and attachments that delivered nothing) before this
// one, so that a broker which accepts the subscription and ends its stream
// at once is not asked again in a tight loop; the count to carry over is
// returned.
func (s *Subscription) resubscribe(failures int) (*attachment, int, error) {
	for ; ; failures++ {
		if err := resubscribeWait(s.ctx, s.c.backoff(failures)); err != nil {
			return nil, failures, ErrClosed
		}
		start := wire.StartPosition{Kind: wire.StartLatest}
		switch {
		case s.haveNext:
			start = wire.StartPosition{Kind: wire.StartOffset, Offset: s.next}
		case !s.received:
			// Nothing delivered yet: the start asked for (the earliest, a
			// time) is still where the subscription should begin. Once
			// events arrive their offsets say where to go on (haveNext).
			start = s.cfg.start
		}
		s.slot = s.c.eventSlot(s.slot)
		att, err := s.c.subscribeOnce(s.ctx, s.slot, s.namespace, s.stream, start, s.cfg.id)
		var ce *CursorError
		for tries := 0; tries < tooOldRetries && errors.As(err, &ce) && ce.Reason == wire.CursorTooOld &&
			start.Kind == wire.StartOffset && ce.Available > start.Offset; tries++ {
			// The broker no longer retains where we stopped: go on from the
			// oldest offset it has, and count the gap (emit does, from the
			// offsets) rather than skipping to the tail. That oldest offset
			// can be gone by the time we ask (an in-memory stream's replay
			// ring moves with every publish): ask again at the new one, a
			// few times.
			s.c.log.Warn("felix: subscription resumes past a gap",
				"stream", s.namespace+"/"+s.stream, "requested", ce.Requested, "resumed_at", ce.Available)
			start = wire.StartPosition{Kind: wire.StartOffset, Offset: ce.Available}
			att, err = s.c.subscribeOnce(s.ctx, s.slot, s.namespace, s.stream, start, s.cfg.id)
		}
		// Still too old (the oldest retained offset kept moving on): the
		// gap from s.next stays known, and the first event from the tail
		// counts it (track).
		var last *CursorError
		stillTooOld := errors.As(err, &last) && last.Reason == wire.CursorTooOld && s.haveNext && last.Available > s.next
		if errors.As(err, &ce) || (errors.Is(err, ErrUnsupported) && start.Kind != wire.StartLatest) {
			// The position we wanted is gone (or the broker lost offsets):
			// continue from the tail.
			s.c.log.Warn("felix: cannot resume subscription where it stopped; continuing from latest",
				"stream", s.namespace+"/"+s.stream, "err", err, "gap_counted", stillTooOld)
			s.haveNext = stillTooOld
			s.cfg.start = wire.StartPosition{}
			att, err = s.c.subscribeOnce(s.ctx, s.slot, s.namespace, s.stream, wire.StartPosition{}, s.cfg.id)
		}
		if err == nil {
			s.mu.Lock()
			if s.ctx.Err() != nil {
				s.mu.Unlock()
				att.rs.CancelRead(streamCodeCancel)
				return nil, failures, ErrClosed
			}
			s.rs = att.rs
			s.mu.Unlock()
			s.id.Store(att.id)
			s.c.log.Info("felix resubscribed", "stream", s.namespace+"/"+s.stream, "subscription_id", att.id)
			return att, failures + 1, nil
		}
		if s.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, failures, ErrClosed
		}
		if isServerReply(err) && !staleSubID(err) {
			return nil, failures, err
		}
	}
}

// pump reads event frames from the attached stream into the buffer until
// the stream ends or the subscription is closed.
func (s *Subscription) pump(att *attachment) error {
	r := wire.NewReader(bufio.NewReaderSize(att.rs, streamReadBuffer), s.c.opts.MaxFrameBytes)
	var batch wire.BinaryEventBatch
	for {
		f, err := r.ReadFrame()
		if errors.Is(err, wire.ErrUnknownFlags) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case wire.IsEventBatch(f.Flags):
			// One copy per frame; the events' payloads alias it.
			if err := wire.DecodeEventBatch(f.Flags, append([]byte(nil), f.Payload...), &batch); err != nil {
				return &ProtocolError{Detail: err.Error()}
			}
			if batch.HasOffsets && offsetsWrap(batch.BaseOffset, len(batch.Payloads)) {
				return &ProtocolError{Detail: fmt.Sprintf("event batch of %d events at offset %d passes the largest offset", len(batch.Payloads), batch.BaseOffset)}
			}
			if !batch.Shared && batch.SubscriptionID != att.id {
				return &ProtocolError{Detail: fmt.Sprintf("event batch for subscription %d on the stream of %d", batch.SubscriptionID, att.id)}
			}
			evs := s.scratch[:0]
			for i, p := range batch.Payloads {
				// Cap each payload so appending to one cannot overwrite the
				// next (they share the frame copy).
				ev := Event{Namespace: s.namespace, Stream: s.stream, Payload: p[:len(p):len(p)]}
				if batch.HasOffsets {
					ev.Offset, ev.HasOffset = batch.BaseOffset+uint64(i), true
				}
				evs = append(evs, ev)
			}
			err := s.emit(evs...)
			clear(evs)
			s.scratch = evs[:0]
			if err != nil {
				return err
			}
		case f.Flags == 0:
			if err := s.emitJSON(f.Payload); err != nil {
				return err
			}
		}
	}
}

// emitJSON delivers the JSON event forms (defined by the protocol, not sent
// by current brokers).
func (s *Subscription) emitJSON(payload []byte) error {
	m, err := wire.DecodeMessage(payload)
	if err != nil {
		return &ProtocolError{Detail: err.Error()}
	}
	switch m := m.(type) {
	case *wire.Event:
		ev := Event{Namespace: s.namespace, Stream: s.stream, Payload: m.Payload}
		if m.Offset != nil {
			ev.Offset, ev.HasOffset = *m.Offset, true
		}
		return s.emit(ev)
	case *wire.EventBatch:
		if m.BaseOffset != nil && offsetsWrap(*m.BaseOffset, len(m.Payloads)) {
			return &ProtocolError{Detail: fmt.Sprintf("event batch of %d events at offset %d passes the largest offset", len(m.Payloads), *m.BaseOffset)}
		}
		evs := make([]Event, 0, len(m.Payloads))
		for i, p := range m.Payloads {
			ev := Event{Namespace: s.namespace, Stream: s.stream, Payload: p}
			if m.BaseOffset != nil {
				ev.Offset, ev.HasOffset = *m.BaseOffset+uint64(i), true
			}
			evs = append(evs, ev)
		}
		return s.emit(evs...)
	}
	return nil
}

// offsetsWrap reports whether n events numbered from base would pass the
// largest uint64.
func offsetsWrap(base uint64, n int) bool {
	return n > 1 && base > math.MaxUint64-uint64(n-1)
}

// track follows the offsets of one frame's events (first to last, which
// are consecutive): a first offset past the one expected is a known gap,
// counted in Missed; offsets at or below it (a repeat) count nothing and
// never move the resume point back. Events without offsets make the
// resume point unknown: resuming from an older one would replay them.
func (s *Subscription) track(first, last Event) {
	if !first.HasOffset || !last.HasOffset {
		s.haveNext = false
		return
	}
	if s.haveNext && first.Offset > s.next {
		s.missed.Add(first.Offset - s.next)
	}
	if !s.haveNext || last.Offset >= s.next {
		// Nothing follows the largest offset: resume from the tail then.
		s.next, s.haveNext = last.Offset+1, last.Offset != math.MaxUint64
	}
}

// emit hands events on in order: to the handler of a SubscribeFunc, or
// into the buffer, blocking while it is full (QUIC flow control then slows
// the broker down). Either way the stream is not read meanwhile.
func (s *Subscription) emit(evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	s.received = true
	s.emitted += uint64(len(evs))
	s.track(evs[0], evs[len(evs)-1])
	if h := s.cfg.handler; h != nil {
		for _, ev := range evs {
			if s.ctx.Err() != nil {
				return ErrClosed
			}
			if err := h(ev); err != nil {
				s.handlerErr = err
				return err
			}
		}
		return nil
	}
	if !s.queue.push(evs, s.ctx.Done()) {
		return ErrClosed
	}
	return nil
}
