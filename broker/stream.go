package broker

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/felixmq/felix/wire"
)

// Stream is one ordered stream of events. Offsets are assigned from 0 in
// publish order; every subscriber sees events in offset order.
type Stream struct {
	b   *Broker
	key StreamKey

	mu   sync.Mutex
	tail uint64 // next offset
	// ring is the replay ring of an in-memory stream. It changes only under
	// both mu and ringMu, so Subscribe reads it under mu alone and a
	// replaying subscription's consumer under ringMu alone: a replay
	// reads the ring as it is when each frame is written, never a
	// snapshot of its own, and goes on while a publisher holds mu
	// (blocked on a full Block queue, maybe its own). Lock order: mu,
	// then ringMu.
	ring   ring
	ringMu sync.Mutex
	ended  error // non-nil once deleted or the broker closed

	lg *logState // nil for in-memory streams

	// endCh is closed (once, endReason set first) as soon as the stream
	// starts to end, before shutdown takes mu: a publisher blocked on a
	// full Block queue holds mu and must let go of it (and Err must not
	// wait for it).
	endCh     chan struct{}
	endOnce   sync.Once
	endReason error

	// subs is copy-on-write, replaced under statsMu. Additions also hold
	// mu (a subscription joins the fanout at a definite offset); removal by
	// Subscription.Close does not, so closing a subscription never waits
	// for a publisher blocked on another subscriber's full Block queue. A
	// publish fans out to the list it loaded and skips the closed ones.
	subs atomic.Pointer[[]*Subscription]

	published      atomic.Uint64 // events
	publishedBytes atomic.Uint64
	publishCalls   atomic.Uint64
	purged         atomic.Uint64 // events removed by Purge
	tooLarge       atomic.Uint64 // publishes refused whole: an event above the log's record limit
	refused        atomic.Uint64 // publishes refused because the stream ended (see StreamStats.Refused)
	// tailNow and oldestNow mirror tail and the ring's oldest offset for
	// Stats, which must not wait for mu: a publisher blocked on a full
	// subscriber queue (the Block policy) holds mu for as long as that
	// lasts, and /metrics must not hang with it.
	tailNow, oldestNow atomic.Uint64

	// statsMu guards retired and every change to subs, and orders them,
	// so SubTotals reads a consistent sum without mu (see SubTotals).
	// Lock order: mu, then statsMu.
	statsMu  sync.Mutex
	retired  SubTotals                  // counters of removed subscriptions
	catching map[*Subscription]struct{} // durable subscriptions replaying the log, not yet in subs
}

func newStream(b *Broker, k StreamKey, o StreamOptions) *Stream {
	s := &Stream{b: b, key: k, endCh: make(chan struct{})}
	if o.Log != nil {
		s.lg = &logState{log: o.Log, durable: o.Durable, fanned: o.Log.Next(), turn: sync.NewCond(&s.mu)}
		s.tail = s.lg.fanned
		s.tailNow.Store(s.tail)
	} else {
		s.ring.init(b.opts.RingCapacity, b.opts.RingMaxBytes)
	}
	s.subs.Store(&[]*Subscription{})
	return s
}

// Key returns the stream's name.
func (s *Stream) Key() StreamKey { return s.key }

// Publish appends payloads to the stream in order and hands them to every
// subscription, returning the offset of the first. The payload bytes are
// copied (into the shared frames), so the caller may reuse them at once.
// An empty batch is a no-op. Only subscriptions with the Block policy can
// make Publish wait; ctx bounds that wait. An error matching
// ErrStoredNotDelivered means the events were stored all the same. On a
// durable stream, a publish whose records are in the log succeeds even if
// the broker closes before every subscription has them; an in-memory
// stream's then fails with ErrClosed (its events go with the broker).
func (s *Stream) Publish(ctx context.Context, payloads [][]byte) (uint64, error) {
	return s.publish(ctx, payloads, nil)
}

// FramedHeadroom is the least Framed.At: the room a frame header and base
// offset take in front of the body.
const FramedHeadroom = wire.HeaderSize + 8

// Framed says where a batch's payloads already lie encoded as the body of
// an event batch: Buf[At:] begins with the u32 count, then each payload as
// a u32 length and its bytes, and Buf[:At] is free. A server that reads a
// binary publish into a buffer of its own has exactly that after the
// names (see wire.BinaryPublishBatch.PayloadsAt).
type Framed struct {
	Buf []byte
	At  int
}

// PublishFramed is Publish for payloads that lie in f as an event batch
// body (payload i is the bytes of the i-th entry there). The caller hands
// f.Buf over: neither it nor the payloads may be modified afterwards, and
// the broker keeps them as long as it needs them. A batch that fits one
// frame (MaxEventsPerFrame, MaxBytesPerFrame) is then delivered without
// copying its payloads: the frame header is written into f.Buf in front of
// the body. Any other batch, or an At below FramedHeadroom, is copied as
// Publish copies it.
func (s *Stream) PublishFramed(ctx context.Context, payloads [][]byte, f Framed) (uint64, error) {
	return s.publish(ctx, payloads, &f)
}

func (s *Stream) publish(ctx context.Context, payloads [][]byte, framed *Framed) (uint64, error) {
	if s.lg != nil {
		return s.publishLogged(ctx, payloads, framed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		s.refused.Add(1)
		return 0, s.ended
	}
	base := s.tail
	if len(payloads) == 0 {
		return base, nil
	}
	chunks, all := s.encodeChunks(payloads, &base, framed)
	if s.ring.capacity > 0 {
		now := s.b.opts.Clock().UnixMicro()
		s.ringMu.Lock()
		s.ring.pushAll(base, now, all)
		s.ringMu.Unlock()
	}
	s.tailNow.Store(base + uint64(len(payloads)))
	s.oldestNow.Store(s.ring.oldest(base + uint64(len(payloads))))
	err := s.fanout(ctx, base, chunks)
	s.tail += uint64(len(payloads))
	// The events are in the stream whatever err says: err only reports that
	// a blocking subscription could not take them before ctx or the stream
	// ended. Unlike a durable stream's (see settleStored), an in-memory
	// publish cut short by the broker's close keeps its error: the ring
	// goes with the broker, so nothing of it outlives the restart.
	return base, err
}

// Tail returns the next offset to be assigned. It never waits for a
// publisher (not even one blocked by a full subscriber queue).
func (s *Stream) Tail() uint64 { return s.tailNow.Load() }

// Subscribe registers a subscription. With a start other than latest, the
// retained events from the start offset (for a start by time, that of the
// first event published at or after it: see SubscribeOptions.Start) are
// replayed first (per-subscription frames, read from the ring as they are
// written), then live events follow with no gap and no duplicate:
// registration and the replay's end are fixed under the same lock as
// publishes. Events the ring evicts (or a purge removes) before the
// replay reaches them are skipped and counted as dropped.
func (s *Stream) Subscribe(opts SubscribeOptions) (*Subscription, error) {
	if s.lg != nil {
		return s.subscribeLogged(opts)
	}
	bo := &s.b.opts
	s.mu.Lock()
	if s.ended != nil {
		s.mu.Unlock()
		return nil, s.ended
	}
	from := s.tail
	if opts.Start.Kind != wire.StartLatest {
		oldest := s.ring.oldest(s.tail)
		switch opts.Start.Kind {
		case wire.StartEarliest:
			from = oldest
		case wire.StartOffset:
			from = opts.Start.Offset
		case wire.StartTime:
			// Always in range: the oldest retained event for a time
			// before it, the tail for a time after the newest.
			from = s.ring.offsetForTime(opts.Start.UnixMicro(), s.tail)
		}
		if from > s.tail {
			s.mu.Unlock()
			return nil, &CursorError{Requested: from, Available: s.tail}
		}
		if from < oldest {
			s.mu.Unlock()
			return nil, &CursorError{TooOld: true, Requested: from, Available: oldest}
		}
	}
	sub := newSubscription(s, opts, bo)
	// The replay is [from, tail) of the ring, read and encoded a frame at
	// a time as it is written (see replayBatch), so a subscription never
	// copies the ring nor keeps alive what it has evicted.
	sub.replayNext, sub.replayEnd = from, s.tail
	sub.replaying = from < s.tail
	s.register(sub)
	s.mu.Unlock()
	return sub, nil
}

// remove takes sub out of the fanout. It does not take mu: a publisher
// blocked on another subscriber's full Block queue holds mu, and closing a
// subscription must not wait for it. A publish already fanning out may
// still offer sub a frame; sub.done (closed before remove) makes it skip.
func (s *Stream) remove(sub *Subscription) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	delete(s.catching, sub)
	old := *s.subs.Load()
	list := make([]*Subscription, 0, len(old))
	found := false
	for _, x := range old {
		if x == sub {
			found = true
			continue
		}
		list = append(list, x)
	}
	if found {
		s.subs.Store(&list)
	}
	// A subscription that never joined the fanout (closed during its
	// catch-up) is retired here too; one already retired (by shutdown) is
	// not counted twice.
	if !sub.retired {
		sub.retired = true
		s.retired.add(sub)
	}
}

// Subscriptions returns the live subscriptions.
func (s *Stream) Subscriptions() []*Subscription { return *s.subs.Load() }

// Err reports why the stream ended (ErrStreamDeleted, or ErrClosed when the
// broker closed), or nil while it is live. It never waits for a publisher.
func (s *Stream) Err() error {
	select {
	case <-s.endCh:
		return s.endReason
	default:
		return nil
	}
}

// shutdown ends the stream: new publishes fail with reason, and every
// subscription ends once its queue is drained. The first reason wins.
func (s *Stream) shutdown(reason error) {
	// First release a publisher blocked on a full Block queue: it holds mu.
	s.endOnce.Do(func() {
		s.endReason = reason
		close(s.endCh)
	})
	s.mu.Lock()
	if s.ended != nil {
		s.mu.Unlock()
		return
	}
	s.ended = s.endReason
	subs := *s.subs.Load()
	empty := []*Subscription{}
	s.statsMu.Lock()
	for _, sub := range subs {
		sub.retired = true
		s.retired.add(sub)
	}
	s.subs.Store(&empty)
	s.statsMu.Unlock()
	if s.lg != nil {
		s.lg.turn.Broadcast() // publishers waiting for their turn give up
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.end(reason)
	}
	if s.lg != nil {
		if err := s.lg.log.Close(); err != nil {
			s.b.logCloseErr(s.key, err)
		}
	}
}

// StreamStats are a stream's counters.
type StreamStats struct {
	Key            StreamKey
	Durable        bool
	Tail           uint64 // next offset
	Oldest         uint64 // oldest offset retained in the replay ring
	Published      uint64 // events
	PublishedBytes uint64
	PublishCalls   uint64
	Purged         uint64 // events removed by Purge
	// TooLarge counts publish calls a log-backed stream refused whole
	// because an event exceeds its log's record limit
	// (commitlog.ErrTooLarge): acked ones got the error, unacked ones
	// were dropped.
	TooLarge uint64
	// Refused counts publish calls refused because the stream had ended:
	// its log failed (the stream then refuses every publish until the
	// broker restarts, and stays listed), or it was deleted or the
	// broker closed while the call ran. Acked ones got the error,
	// unacked ones were dropped.
	Refused       uint64
	Subscriptions []SubStats
}

// Stats returns the stream's counters. It never waits for a publisher
// (not even one blocked by a full subscriber queue).
func (s *Stream) Stats() StreamStats {
	st := StreamStats{Key: s.key, Tail: s.tailNow.Load(), Oldest: s.oldestNow.Load()}
	if s.lg != nil {
		st.Oldest, st.Durable = s.lg.log.Oldest(), s.lg.durable
	}
	st.Published = s.published.Load()
	st.PublishedBytes = s.publishedBytes.Load()
	st.PublishCalls = s.publishCalls.Load()
	st.Purged = s.purged.Load()
	st.TooLarge = s.tooLarge.Load()
	st.Refused = s.refused.Load()
	for _, sub := range *s.subs.Load() {
		st.Subscriptions = append(st.Subscriptions, sub.Stats())
	}
	for _, sub := range s.catchingUp() {
		ss := sub.Stats()
		ss.CatchingUp = true
		st.Subscriptions = append(st.Subscriptions, ss)
	}
	return st
}

// catchingUp returns the subscriptions replaying the log, by id.
func (s *Stream) catchingUp() []*Subscription {
	s.statsMu.Lock()
	subs := make([]*Subscription, 0, len(s.catching))
	for sub := range s.catching {
		subs = append(subs, sub)
	}
	s.statsMu.Unlock()
	slices.SortFunc(subs, func(a, b *Subscription) int { return cmp.Compare(a.id, b.id) })
	return subs
}
