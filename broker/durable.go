package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// StreamOptions configure a stream at creation. The zero value is an
// in-memory stream (bounded replay ring, lost on restart).
type StreamOptions struct {
	// Log makes the stream log-backed: every publish is appended to it
	// (and acknowledged only once the log's sync policy is met) before it
	// is fanned out, and subscriptions may start anywhere in its retained
	// range. The broker owns the log and closes it with the stream.
	Log commitlog.Log
	// Durable marks a Log that survives restarts (a disk log); durable
	// streams put offsets on live frames for peers that asked for them.
	Durable bool
}

// logState is the log-backed part of a Stream, guarded by Stream.mu.
type logState struct {
	log     commitlog.Log
	durable bool
	fanned  uint64     // every offset below this has been fanned out
	turn    *sync.Cond // signalled when fanned advances or the stream ends
}

// Log returns the stream's log, or nil for an in-memory (ring) stream.
func (s *Stream) Log() commitlog.Log {
	if s.lg == nil {
		return nil
	}
	return s.lg.log
}

// IsDurable reports whether the stream is backed by a durable log.
func (s *Stream) IsDurable() bool { return s.lg != nil && s.lg.durable }

// CheckStorage asks Options.StorageGuard whether durable writes may go on
// (nil without a guard): the free disk space floor, which refuses them
// before the disk is full.
func (b *Broker) CheckStorage() error {
	if g := b.opts.StorageGuard; g != nil {
		return g()
	}
	return nil
}

// publishLogged appends to the log, then fans out in offset order. A
// publish whose records did not reach the log fails; one whose records
// did is settled by settleStored when the fanout is cut short (on a
// durable stream, the broker's close does not fail it).
func (s *Stream) publishLogged(ctx context.Context, payloads [][]byte, framed *Framed) (uint64, error) {
	s.mu.Lock()
	if s.ended != nil {
		s.mu.Unlock()
		s.refused.Add(1)
		return 0, s.ended
	}
	s.mu.Unlock()
	if len(payloads) == 0 {
		return s.lg.log.Next(), nil
	}
	// A publish whose context has already ended (its connection is gone) is
	// refused before anything is written.
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.lg.durable {
		if err := s.b.CheckStorage(); err != nil {
			return 0, &StorageError{Key: s.key, Err: err}
		}
	}
	// Encode the shared frames first: the log then keeps sub-slices of the
	// same immutable bytes, so each payload is copied once.
	chunks, all := s.encodeChunks(payloads, nil, framed)
	// The append itself is not cut short by ctx: a log may return a context
	// error without having assigned offsets (DiskLog checks ctx first), and
	// this publisher could not tell whether its records were written. Only
	// the sync wait (SyncAlways) is affected, and it is bounded by the disk.
	first, err := s.lg.log.Append(context.WithoutCancel(ctx), all)
	if errors.Is(err, commitlog.ErrTooLarge) {
		// Refused whole before anything was written; the log is fine.
		// Counted: an unacknowledged publish is dropped here unseen.
		s.tooLarge.Add(1)
		return 0, err
	}
	if _, ok := errors.AsType[*commitlog.WriteError](err); ok {
		// Not written, the log as it was (a full disk): this publish
		// fails, the stream and its subscribers go on, and the next
		// publish is stored once the disk has room.
		return 0, &StorageError{Key: s.key, Err: err}
	}
	if err != nil {
		s.refused.Add(1)
		if reason := s.Err(); reason != nil {
			// The stream was deleted (or the broker closed), closing its
			// log, after the check above: report that, as any publish to
			// an ended stream does.
			return 0, reason
		}
		// The log refused or failed: it assigned no offsets we can fan out,
		// and it may be broken. Fail the stream rather than stall later
		// publishers waiting for a turn that never comes.
		s.fail(fmt.Errorf("durable append on %s: %w", s.key, err))
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.lg.fanned != first && s.ended == nil {
		s.lg.turn.Wait()
	}
	if s.ended != nil {
		// The stream ended between the append and the fanout. The records
		// are stored (the error says so), so the publish counts as
		// published whatever its outcome, as one whose fanout the end cut
		// short does: counted nowhere, it would vanish from the stream's
		// counters (a stream failed by its log stays listed).
		s.countPublished(chunks)
		return first, s.settleStored(stored(s.ended))
	}
	ferr := s.fanout(ctx, first, chunks)
	s.lg.fanned = first + uint64(len(all))
	s.tail = s.lg.fanned
	s.tailNow.Store(s.tail)
	s.lg.turn.Broadcast()
	return first, s.settleStored(ferr)
}

// settleStored decides the outcome of a publish whose records are in the
// log (its Append met the sync policy) but did not reach every
// subscription, for err (it matches ErrStoredNotDelivered). When the
// broker's close cut the fanout short on a durable stream, the records
// are stored and will be there after the restart: the publish succeeds
// (nil), as a JetStream or Kafka publish is acknowledged once the log
// has it, and a client that retried on an error would store it twice.
// Otherwise err stands: a deleted stream's log goes with it, a stream
// whose log is not durable loses it on restart, and a publisher whose
// context ended while a Block subscriber was full was not promised
// every delivery.
func (s *Stream) settleStored(err error) error {
	if err != nil && s.lg.durable && errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// countPublished counts a stored publish of chunks: after its fanout, or
// in place of it when the broker's close came first (see settleStored).
func (s *Stream) countPublished(chunks []chunk) {
	for _, c := range chunks {
		s.published.Add(uint64(c.events))
		s.publishedBytes.Add(uint64(c.size))
	}
	s.publishCalls.Add(1)
}

// fail ends a log-backed stream after a storage error: it refuses every
// later publish (counted in StreamStats.Refused) until the broker
// restarts. The failure that ended it is logged once.
func (s *Stream) fail(err error) {
	s.shutdown(err)
	if l := s.b.opts.Logger; l != nil && s.Err() == err {
		l.Error("stream failed: publishes refused until the broker restarts", "stream", s.key.String(), "err", err)
	}
}

// chunk is one shared frame of a publish and the payloads inside it.
type chunk struct {
	frame   []byte
	offsets bool // frame carries its base offset (0x0024)
	events  int
	size    int
	slices  [][]byte // payload sub-slices of frame
}

// encodeChunks splits payloads into frames (MaxEventsPerFrame,
// MaxBytesPerFrame) and returns them with every payload as a sub-slice of
// its frame, in order.
//
// base is the offset of the first payload when it is known at encoding
// (in-memory streams, under the stream lock): the frames then carry their
// base offsets (flag 0x0020), which most subscribers (the Go SDK's) want,
// and fanout encodes the plain variant only for those that do not. A
// durable stream's offsets come from its log after encoding (nil base).
//
// framed, when not nil, holds the payloads already encoded (see
// PublishFramed): a batch that makes one frame becomes that frame in place.
func (s *Stream) encodeChunks(payloads [][]byte, base *uint64, framed *Framed) ([]chunk, [][]byte) {
	opts := &s.b.opts
	if framed != nil {
		if c, ok := framedChunk(payloads, base, framed, opts); ok {
			return []chunk{c}, c.slices
		}
	}
	var chunks []chunk
	all := make([][]byte, len(payloads)) // one backing array; chunks share it
	for i := 0; i < len(payloads); {
		j, size := i, 0
		for j < len(payloads) && j-i < opts.MaxEventsPerFrame && (j == i || size+len(payloads[j]) <= opts.MaxBytesPerFrame) {
			size += len(payloads[j])
			j++
		}
		part := payloads[i:j]
		var frame []byte
		pos := wire.HeaderSize + 4
		if base != nil {
			frame = wire.AppendEventBatchFrame(make([]byte, 0, wire.HeaderSize+12+4*len(part)+size), true, *base+uint64(i), part)
			pos += 8
		} else {
			frame = wire.AppendEventBatchFrame(make([]byte, 0, wire.HeaderSize+4+4*len(part)+size), false, 0, part)
		}
		for k, p := range part {
			pos += 4
			all[i+k] = frame[pos : pos+len(p) : pos+len(p)]
			pos += len(p)
		}
		chunks = append(chunks, chunk{frame: frame, offsets: base != nil, events: len(part), size: size, slices: all[i:j:j]})
		i = j
	}
	return chunks, all
}

// framedChunk makes the one frame of a batch whose payloads f holds
// encoded (see PublishFramed) by writing its header in front of them, and
// reports false when the batch needs more than one frame or f leaves no
// room for the header.
func framedChunk(payloads [][]byte, base *uint64, f *Framed, opts *Options) (chunk, bool) {
	n := len(payloads)
	if n == 0 || n > opts.MaxEventsPerFrame || f.At < FramedHeadroom {
		return chunk{}, false
	}
	size, body := 0, 4
	for _, p := range payloads {
		size += len(p)
		body += 4 + len(p)
	}
	if n > 1 && size > opts.MaxBytesPerFrame || f.At+body > len(f.Buf) {
		return chunk{}, false
	}
	var frame []byte
	slices := payloads
	if base != nil {
		frame = wire.PrefixEventBatchFrame(f.Buf[:f.At+body], f.At, true, *base)
	} else {
		frame = wire.PrefixEventBatchFrame(f.Buf[:f.At+body], f.At, false, 0)
		// A log may keep the slice it is given: not the caller's, which
		// it reuses.
		slices = append([][]byte(nil), payloads...)
	}
	return chunk{frame: frame, offsets: base != nil, events: n, size: size, slices: slices}, true
}

// fanout hands encoded chunks (offsets from first) to every subscription.
// Called with s.mu held, after the events are stored: an error matches
// ErrStoredNotDelivered.
func (s *Stream) fanout(ctx context.Context, first uint64, chunks []chunk) error {
	subs := *s.subs.Load()
	var err error
	off := first
	for _, c := range chunks {
		// The chunk's frame is one variant (with or without offsets); the
		// other is encoded once, for the first subscription that wants it.
		var variant [2]Delivery // [0] plain, [1] with offsets
		variant[boolIndex(c.offsets)] = Delivery{Frame: c.frame, Events: c.events, BaseOffset: off}
		for _, sub := range subs {
			v := &variant[boolIndex(sub.wantOffsets)]
			if v.Frame == nil {
				*v = Delivery{Frame: wire.AppendEventBatchFrame(nil, sub.wantOffsets, off, c.slices), Events: c.events, BaseOffset: off}
			}
			dd := *v
			if e := sub.enqueue(ctx, dd); e != nil && err == nil {
				err = e
			}
		}
		off += uint64(c.events)
	}
	s.countPublished(chunks)
	return stored(err)
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// subscribeLogged starts a subscription on a log-backed stream. A start
// behind the fanned-out position begins in catch-up: the subscription reads
// the log (see catchUp) and joins live delivery when it reaches it.
func (s *Stream) subscribeLogged(opts SubscribeOptions) (*Subscription, error) {
	var atTime uint64
	if opts.Start.Kind == wire.StartTime {
		// Looked up before the stream lock is taken: it reads the log,
		// and publishers wait for that lock.
		off, err := s.lg.log.OffsetForTime(opts.Start.Time())
		if err != nil {
			if reason := s.Err(); reason != nil {
				return nil, reason // the stream ended, closing its log
			}
			return nil, &StartTimeError{Key: s.key, TimeMs: opts.Start.TimeMs, Err: err}
		}
		atTime = off
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return nil, s.ended
	}
	// Retention may already have trimmed records appended but not yet
	// fanned out (their publishers wait for their turn): they still reach
	// live subscribers, so a start at tail is always valid, and the oldest
	// start is min(Oldest, tail).
	tail := s.lg.fanned
	oldest := min(s.lg.log.Oldest(), tail)
	from := tail
	switch opts.Start.Kind {
	case wire.StartEarliest:
		from = oldest
	case wire.StartOffset:
		from = opts.Start.Offset
	case wire.StartTime:
		// Never out of range: retention may have passed the record since
		// the lookup (go on from the oldest), and one appended but not yet
		// fanned out reaches the subscription live (from the tail).
		from = min(max(atTime, oldest), tail)
	}
	if from > tail {
		return nil, &CursorError{Requested: from, Available: tail}
	}
	if from < oldest {
		return nil, &CursorError{TooOld: true, Requested: from, Available: oldest}
	}
	sub := newSubscription(s, opts, &s.b.opts)
	if from == tail {
		s.register(sub)
	} else {
		sub.catchUp, sub.next = true, from
		s.statsMu.Lock()
		if s.catching == nil {
			s.catching = map[*Subscription]struct{}{}
		}
		s.catching[sub] = struct{}{} // counted and listed while it replays
		s.statsMu.Unlock()
	}
	return sub, nil
}

// register adds sub to the live fanout. Called with s.mu held (so sub
// joins at a definite offset); it takes statsMu, which orders it with
// remove: a subscription already closed is not added (its Close may have
// run remove before this, and would leave it in the fanout for good), and
// is left where it is counted (catching) for remove to retire: taking it
// out here, before remove has folded its counts into the retired totals,
// would make SubTotals go down until remove runs.
func (s *Stream) register(sub *Subscription) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	select {
	case <-sub.done:
		return
	default:
	}
	delete(s.catching, sub)
	list := append(append(make([]*Subscription, 0, len(*s.subs.Load())+1), *s.subs.Load()...), sub)
	s.subs.Store(&list)
}

// catchUpBatch returns the next replay frame of a subscription in catch-up,
// or joins it to live delivery (returning nil) once it has read everything
// fanned out so far. Only the subscription's consumer calls it.
//
// Retention may overtake a catch-up (its next record is trimmed): the
// subscription then goes on from the oldest record retained, as a slow
// subscriber would, counting the skipped events as dropped (with offsets,
// the gap shows on the wire) rather than ending. When the stream ends
// (deleted, the broker closed), the catch-up ends at once, counting what
// it had yet to replay as dropped (endCatchUp).
func (sub *Subscription) catchUpBatch() ([]byte, int, error) {
	s := sub.stream
	for {
		if s.Err() != nil {
			return nil, 0, sub.endCatchUp()
		}
		// Below the fanned-out position (mirrored in tailNow) the log is
		// read without the stream lock, so catch-up goes on while a
		// publisher holds it (blocked on a full Block queue). Only joining
		// live delivery takes the lock.
		tail := s.tailNow.Load()
		if sub.next >= tail {
			s.mu.Lock()
			if s.ended != nil {
				s.mu.Unlock()
				return nil, 0, sub.endCatchUp()
			}
			tail = s.lg.fanned
			if sub.next >= tail {
				// Caught up: from now on the live fanout delivers, starting
				// exactly at tail, because registration happens under the
				// fanout lock.
				s.register(sub)
				sub.catchUp = false
				s.mu.Unlock()
				return nil, 0, nil
			}
			s.mu.Unlock()
		}
		opts := sub.opts
		recs, err := s.lg.log.Read(sub.next, opts.MaxEventsPerFrame, opts.MaxBytesPerFrame)
		if err != nil {
			var too *commitlog.TooOldError
			if errors.As(err, &too) && too.Oldest > sub.next {
				// Trimmed under us: skip to the oldest retained record (or
				// to tail, when retention passed it too: live delivery
				// carries the records from there).
				to := min(too.Oldest, tail)
				sub.dropped.Add(to - sub.next)
				sub.next = to
				continue
			}
			if s.Err() != nil {
				// The stream ended (and closed its log) during the read.
				return nil, 0, sub.endCatchUp()
			}
			return nil, 0, fmt.Errorf("replay %s from %d: %w", s.key, sub.next, err)
		}
		payloads := make([][]byte, 0, len(recs))
		for _, r := range recs {
			if r.Offset >= tail {
				break // appended but not yet fanned out: live delivery will carry it
			}
			payloads = append(payloads, r.Payload)
		}
		if len(payloads) == 0 {
			return nil, 0, fmt.Errorf("replay %s from %d: log returned nothing below %d", s.key, sub.next, tail)
		}
		frame := wire.AppendSubEventBatchFrame(nil, sub.id, sub.wantOffsets, sub.next, payloads)
		sub.next += uint64(len(payloads))
		sub.delivered.Add(uint64(len(payloads)))
		return frame, len(payloads), nil
	}
}

// endCatchUp ends a catch-up cut short by the stream's end (deleted, the
// broker closed, or its log failed): the log is closed, so the events
// fanned out before the end that it has yet to replay will never reach
// it. They count as dropped, as those retention skips do, so delivered
// plus dropped covers every event from its start, as for a live
// subscription. Once the stream has started to end, shutdown takes the
// lock (a blocked publisher lets go of it), sets ended and wakes the
// turn waiters; from then on fanned no longer moves. Counted once: next
// moves to the end.
func (sub *Subscription) endCatchUp() error {
	s := sub.stream
	s.mu.Lock()
	for s.ended == nil {
		s.lg.turn.Wait()
	}
	reason, tail := s.ended, s.lg.fanned
	s.mu.Unlock()
	if tail > sub.next {
		sub.dropped.Add(tail - sub.next)
		sub.next = tail
	}
	return &endedError{reason: reason}
}
