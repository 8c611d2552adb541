package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/wire"
)

// Delivery is one encoded event-batch frame (header included) queued for a
// subscription. Frame is shared by every subscription and must not be
// modified.
type Delivery struct {
	Frame      []byte
	Events     int
	BaseOffset uint64
}

// SubscribeOptions configure a subscription. The zero value subscribes at
// the tail with the broker's default queue.
type SubscribeOptions struct {
	// ID is the subscription id; 0 means the broker assigns one.
	ID uint64
	// Start is where delivery begins: latest (default), earliest retained,
	// an exact offset, or the first event published at or after a time
	// (wire.StartTime), resolved to its offset when subscribing and then
	// replayed as an offset start. A time before the oldest retained event
	// starts at the oldest, one after the newest at the tail: a start by
	// time is never out of range. In-memory streams look the time up in
	// their replay ring (stamped by Options.Clock; a disabled ring starts
	// at the tail), log-backed ones in their log (Log.OffsetForTime).
	Start wire.StartPosition
	// WantOffsets selects frames carrying base offsets (flag 0x0020).
	WantOffsets bool
	// Policy overrides the broker's queue policy when non-nil.
	Policy *QueuePolicy
	// QueueCapacity overrides the broker's queue bound (frames) when > 0.
	QueueCapacity int
	// QueueMaxBytes overrides the broker's queue bound (bytes) when > 0.
	QueueMaxBytes int
}

// Sink lets a subscription deliver a frame straight from the publisher's
// goroutine, skipping the hop through its queue and writer, when nothing is
// queued or being written. TryWrite must not block; it reports false when
// the frame cannot be taken at once (then the frame is queued as usual).
type Sink interface {
	TryWrite(frame []byte) bool
}

// Subscription is one subscriber's bounded queue on a stream.
type Subscription struct {
	id          uint64
	stream      *Stream
	policy      QueuePolicy
	wantOffsets bool
	opts        *Options

	q chan Delivery
	// [replayNext, replayEnd) is the part of an in-memory stream's ring
	// still to replay before q. NextBatch reads it from the ring a frame
	// at a time (payloads into replayBuf, sub-slices of the shared
	// frames), so a subscription neither copies the ring nor keeps alive
	// what the ring evicts or a purge removes: those are skipped. Owned by
	// the consumer.
	replayNext, replayEnd uint64
	replayBuf             [][]byte
	// carry is a frame taken from q that did not fit in the previous
	// NextBatch (WriteMaxBytes, WriteMaxEvents): it starts the next one.
	// Owned by the consumer; still counted in pending.
	carry Delivery

	// mu orders direct writes against the queue: pending counts frames
	// queued or handed to the consumer and not yet released; a frame goes
	// straight to sink only when pending is 0. bytes is the length of
	// those same frames, the measure of the byte bound (maxBytes): a frame
	// is reserved (pending, bytes) only while it fits, or when pending is 0.
	mu      sync.Mutex
	sink    Sink
	pending int
	bytes   int
	// replaying is true until the replay has been written (NextBatch is
	// called after its last frame): live frames do not go to sink
	// meanwhile, they wait in q behind it.
	replaying bool
	// room wakes a Block publisher waiting for bytes (waiting set, under
	// mu): release signals it. Made on the first such wait.
	room     chan struct{}
	waiting  bool
	maxBytes int

	lastFrames int // frames of the previous NextBatch, released on the next call
	lastBytes  int // their bytes
	// held is the part of bytes the consumer has taken out of q (the
	// batch it is writing and carry), under mu: drop_old cannot free it.
	held int

	// Catch-up (log-backed streams): the consumer replays the log from next
	// until it reaches the fanout position, then joins live delivery.
	catchUp bool
	next    uint64

	// retired is set (under the stream's statsMu) once the counters below
	// are folded into the stream's retired totals.
	retired bool

	done      chan struct{} // closed by Close (consumer gone)
	closeOnce sync.Once
	ended     chan struct{} // closed when the stream ends (drain, then stop)
	endOnce   sync.Once
	endErr    error

	enqueued  atomic.Uint64 // events accepted into the queue
	dropped   atomic.Uint64 // events dropped by the policy
	delivered atomic.Uint64 // events handed to the consumer
}

func newSubscription(s *Stream, o SubscribeOptions, bo *Options) *Subscription {
	id := o.ID
	if id == 0 {
		id = s.b.NextSubscriptionID()
	}
	policy := bo.QueuePolicy
	if o.Policy != nil {
		policy = *o.Policy
	}
	capacity := bo.QueueCapacity
	if o.QueueCapacity > 0 {
		capacity = o.QueueCapacity
	}
	maxBytes := bo.QueueMaxBytes
	if o.QueueMaxBytes > 0 {
		maxBytes = o.QueueMaxBytes
	}
	return &Subscription{
		id: id, stream: s, policy: policy, wantOffsets: o.WantOffsets, opts: bo, maxBytes: maxBytes,
		q: make(chan Delivery, capacity), done: make(chan struct{}), ended: make(chan struct{}),
	}
}

// ID returns the subscription id.
func (sub *Subscription) ID() uint64 { return sub.id }

// Stream returns the subscribed stream.
func (sub *Subscription) Stream() *Stream { return sub.stream }

// enqueue applies the queue policy. Called with the stream lock held.
func (sub *Subscription) enqueue(ctx context.Context, d Delivery) error {
	select {
	case <-sub.done:
		return nil
	default:
	}
	sub.mu.Lock()
	if sub.pending == 0 && sub.sink != nil && !sub.replaying && sub.sink.TryWrite(d.Frame) {
		sub.mu.Unlock()
		sub.enqueued.Add(uint64(d.Events))
		sub.delivered.Add(uint64(d.Events))
		return nil
	}
	n := len(d.Frame)
	if sub.pending > 0 && sub.bytes+n > sub.maxBytes {
		sub.mu.Unlock()
		if ok, err := sub.makeRoom(ctx, d); !ok {
			return err
		}
	} else {
		// Reserve before the frame can be seen by the consumer.
		sub.pending++
		sub.bytes += n
		sub.mu.Unlock()
	}
	queued, err := sub.push(ctx, d)
	if !queued {
		sub.release(1, n)
	}
	return err
}

// release gives back frames (and their bytes) reserved by enqueue, once
// they are written or dropped, and wakes a Block publisher waiting for
// bytes.
func (sub *Subscription) release(frames, bytes int) { sub.releaseHeld(frames, bytes, 0) }

// releaseHeld is release for frames of which held bytes were the
// consumer's (the batch it wrote).
func (sub *Subscription) releaseHeld(frames, bytes, held int) {
	if frames == 0 {
		return
	}
	sub.mu.Lock()
	sub.pending -= frames
	sub.bytes -= bytes
	sub.held -= held
	if sub.waiting {
		sub.waiting = false
		select {
		case sub.room <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	sub.mu.Unlock()
}

// makeRoom applies the policy to frame d, which does not fit the byte
// bound, and reports whether it may be queued: then it is reserved, as in
// enqueue. DropNew drops it; DropOld drops the oldest queued frames until
// it fits (or drops d when what holds the bytes is with the consumer, the
// frames it is writing); Block waits for the consumer to release enough,
// bounded as push's wait for a slot. Only the stream's publisher (under
// the stream lock) calls it, so no other reservation races it.
func (sub *Subscription) makeRoom(ctx context.Context, d Delivery) (bool, error) {
	n := len(d.Frame)
	for {
		sub.mu.Lock()
		if sub.pending == 0 || sub.bytes+n <= sub.maxBytes {
			sub.pending++
			sub.bytes += n
			sub.mu.Unlock()
			return true, nil
		}
		if sub.policy == DropOld && sub.held > 0 && sub.held+n > sub.maxBytes {
			// What holds the bytes is being written, not queued:
			// dropping the queued frames could not make room (with
			// nothing held, d fits alone once they are gone).
			sub.mu.Unlock()
			sub.dropped.Add(uint64(d.Events))
			return false, nil
		}
		if sub.policy == Block {
			// Set under the lock that release takes, so no release after
			// the check above can miss us.
			if sub.room == nil {
				sub.room = make(chan struct{}, 1)
			}
			sub.waiting = true
		}
		room := sub.room
		sub.mu.Unlock()
		switch sub.policy {
		case DropOld:
			select {
			case old := <-sub.q:
				sub.dropped.Add(uint64(old.Events))
				sub.release(1, len(old.Frame))
				continue
			default:
			}
		case Block:
			if ok, err := sub.blockWait(ctx, d, nil, room); !ok {
				return false, err
			}
			continue
		}
		sub.dropped.Add(uint64(d.Events))
		return false, nil
	}
}

// blockWait is a Block publisher's wait for room for d: until q takes d
// (then counted as enqueued) or room is signalled (the caller checks
// again), whichever is non-nil, and reports true; or until the
// subscription or the stream ends or ctx does (see abandon).
func (sub *Subscription) blockWait(ctx context.Context, d Delivery, q chan<- Delivery, room <-chan struct{}) (bool, error) {
	select {
	case q <- d:
		sub.enqueued.Add(uint64(d.Events))
		return true, nil
	case <-room:
		return true, nil
	case <-sub.done:
		return sub.abandon(d, nil)
	case <-ctx.Done():
		return sub.abandon(d, ctx.Err())
	case <-sub.stream.endCh:
		// The stream is being deleted or the broker closes: the frame
		// will never fit (the subscription ends after its queue).
		return sub.abandon(d, sub.stream.endReason)
	}
}

// abandon settles a Block publisher's wait for d that ended without room,
// for cause (nil: the consumer closed the subscription). d counts as
// dropped unless only the consumer went away: when the stream's deletion
// or the broker's close ended the subscription (endCh closes first), it is
// counted whichever ready case select picked.
func (sub *Subscription) abandon(d Delivery, cause error) (bool, error) {
	if cause == nil {
		select {
		case <-sub.stream.endCh:
			cause = sub.stream.endReason
		default:
			return false, nil
		}
	}
	sub.dropped.Add(uint64(d.Events))
	return false, cause
}

// SetSink enables direct delivery (see Sink). The consumer calls it once it
// has written everything that must precede live frames (the hello);
// a replay still to write (which NextBatch returns first) holds live
// frames in the queue until it is written.
func (sub *Subscription) SetSink(s Sink) {
	sub.mu.Lock()
	sub.sink = s
	sub.mu.Unlock()
}

// replayBatch encodes the next frame of the replay into buf (at most
// MaxEventsPerFrame events and MaxBytesPerFrame bytes, one event
// whatever its size), read from the ring under ringMu. Events the ring no
// longer holds (evicted as it moved on, or purged) are skipped and
// counted as dropped, as when retention overtakes a log replay; it
// returns no events when none of the replay is left.
func (sub *Subscription) replayBatch(buf []byte) ([]byte, int) {
	s := sub.stream
	s.ringMu.Lock()
	payloads, at := s.ring.read(sub.replayBuf[:0], sub.replayNext, sub.replayEnd, sub.opts.MaxEventsPerFrame, sub.opts.MaxBytesPerFrame)
	s.ringMu.Unlock()
	if at > sub.replayNext {
		sub.dropped.Add(at - sub.replayNext)
	}
	sub.replayNext = at
	if len(payloads) == 0 {
		sub.replayBuf = nil
		return nil, 0
	}
	// The payloads are immutable: they are encoded without the lock.
	frame := wire.AppendSubEventBatchFrame(buf[:0], sub.id, sub.wantOffsets, at, payloads)
	n := len(payloads)
	clear(payloads) // keep no frame alive through the scratch slice
	sub.replayBuf = payloads[:0]
	sub.replayNext += uint64(n)
	if sub.replayNext >= sub.replayEnd {
		sub.replayBuf = nil
	}
	sub.delivered.Add(uint64(n))
	return frame, n
}

// push puts d on the queue per the policy and reports whether it was queued.
func (sub *Subscription) push(ctx context.Context, d Delivery) (bool, error) {
	select {
	case sub.q <- d:
		sub.enqueued.Add(uint64(d.Events))
		return true, nil
	default:
	}
	switch sub.policy {
	case DropOld:
		for range 4 { // the consumer may race us for the freed slot
			select {
			case old := <-sub.q:
				sub.dropped.Add(uint64(old.Events))
				sub.release(1, len(old.Frame))
			default:
			}
			select {
			case sub.q <- d:
				sub.enqueued.Add(uint64(d.Events))
				return true, nil
			default:
			}
		}
	case Block:
		return sub.blockWait(ctx, d, sub.q, nil)
	}
	sub.dropped.Add(uint64(d.Events))
	return false, nil
}

// Close ends the subscription from the consumer's side (for example when
// its connection is gone). Queued frames are discarded. Idempotent. It
// never waits for a publisher, not even one blocked on a full Block queue
// (its own, which Close releases, or another subscription's).
func (sub *Subscription) Close() {
	sub.closeOnce.Do(func() {
		close(sub.done) // first, so a publisher blocked on us lets go of the stream lock
		sub.SetSink(nil)
		sub.stream.remove(sub)
	})
}

// end is called by the stream: deliver what is queued, then stop.
func (sub *Subscription) end(reason error) {
	sub.endOnce.Do(func() {
		sub.endErr = reason
		close(sub.ended)
	})
}

// Done is closed when the consumer has closed the subscription.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }

// NextBatch waits for the next frames and returns bytes to write: either one
// shared frame as is (no copy), or several frames coalesced into buf (up to
// WriteMaxBytes/WriteMaxEvents, waiting up to WriteMaxDelay for more). It
// returns ErrSubscriptionEnded (wrapped reason) after the stream ended and
// the queue is drained, or ctx.Err(). Only one goroutine may call it.
func (sub *Subscription) NextBatch(ctx context.Context, buf []byte) ([]byte, int, error) {
	sub.releaseHeld(sub.lastFrames, sub.lastBytes, sub.lastBytes) // the previous batch has been written
	sub.lastFrames, sub.lastBytes = 0, 0
	if sub.catchUp {
		if err := sub.stopped(ctx); err != nil {
			return nil, 0, err
		}
		b, n, err := sub.catchUpBatch()
		if err != nil || b != nil {
			return b, n, err
		}
	}
	if sub.replayNext < sub.replayEnd {
		if err := sub.stopped(ctx); err != nil {
			return nil, 0, err
		}
		if b, n := sub.replayBatch(buf); n > 0 {
			return b, n, nil
		}
		// The rest of the replay was evicted or purged: on to q.
	}
	if sub.replaying {
		// Called again: the replay's last frame has been written, so
		// live frames may go straight to the sink once q is empty.
		sub.mu.Lock()
		sub.replaying = false
		sub.mu.Unlock()
	}
	var first Delivery
	if sub.carry.Frame != nil {
		first, sub.carry = sub.carry, Delivery{}
	} else {
		select {
		case first = <-sub.q:
		default:
			select {
			case first = <-sub.q:
			case <-sub.done:
				return nil, 0, ErrSubscriptionEnded
			case <-sub.ended:
				select {
				case first = <-sub.q:
				default:
					return nil, 0, sub.endedErr()
				}
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
	}
	// frames and size count exactly the reserved frames this batch takes
	// (carry included), released by the next call; a frame taken from q
	// into carry is counted by the batch that writes it.
	events, frames, size := first.Events, 1, len(first.Frame)
	out := first.Frame
	copied := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(out) < sub.opts.WriteMaxBytes && events < sub.opts.WriteMaxEvents {
		var d Delivery
		select {
		case d = <-sub.q:
		default:
			if sub.opts.WriteMaxDelay <= 0 {
				goto done
			}
			if timer == nil {
				timer = time.NewTimer(sub.opts.WriteMaxDelay)
			}
			select {
			case d = <-sub.q:
			case <-timer.C:
				goto done
			case <-ctx.Done():
				goto done
			case <-sub.ended:
				goto done
			case <-sub.done:
				goto done
			}
		}
		if len(out)+len(d.Frame) > sub.opts.WriteMaxBytes || events+d.Events > sub.opts.WriteMaxEvents {
			sub.carry = d // the next write starts with it
			break
		}
		if !copied {
			out = append(buf[:0], out...)
			copied = true
		}
		out = append(out, d.Frame...)
		events += d.Events
		frames++
		size += len(d.Frame)
	}
done:
	sub.lastFrames, sub.lastBytes = frames, size
	sub.mu.Lock()
	sub.held = size + len(sub.carry.Frame)
	sub.mu.Unlock()
	sub.delivered.Add(uint64(events))
	return out, events, nil
}

// stopped reports why a replay (of the log or the ring) must not go on:
// ctx ended, or the consumer closed the subscription.
func (sub *Subscription) stopped(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-sub.done:
		return ErrSubscriptionEnded
	default:
		return nil
	}
}

func (sub *Subscription) endedErr() error {
	if sub.endErr == nil || sub.endErr == ErrSubscriptionEnded {
		return ErrSubscriptionEnded
	}
	return &endedError{reason: sub.endErr}
}

type endedError struct{ reason error }

func (e *endedError) Error() string { return "subscription ended: " + e.reason.Error() }
func (e *endedError) Is(t error) bool {
	return t == ErrSubscriptionEnded || t == e.reason
}

// SubStats are a subscription's counters. Dropped counts events discarded
// by the queue policy (or a blocked publish that gave up).
type SubStats struct {
	ID            uint64
	Stream        StreamKey
	Policy        QueuePolicy
	QueueLen      int // frames waiting
	QueueCap      int
	QueueBytes    int    // bytes of the frames queued or being written (the byte bound's measure)
	QueueMaxBytes int    // the byte bound
	Enqueued      uint64 // events accepted
	Dropped       uint64 // events dropped
	Delivered     uint64 // events handed to the writer
	// CatchingUp: a durable subscription still replaying the log; it
	// joins live delivery (and its queue) when it reaches the tail.
	CatchingUp bool
}

// Stats returns the subscription's counters.
func (sub *Subscription) Stats() SubStats {
	sub.mu.Lock() // never held across a wait
	queued := sub.bytes
	sub.mu.Unlock()
	return SubStats{
		ID: sub.id, Stream: sub.stream.key, Policy: sub.policy,
		QueueLen: len(sub.q), QueueCap: cap(sub.q), QueueBytes: queued, QueueMaxBytes: sub.maxBytes,
		Enqueued: sub.enqueued.Load(), Dropped: sub.dropped.Load(), Delivered: sub.delivered.Load(),
	}
}
