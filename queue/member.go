package queue

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"
)

// Delivery is a record handed to a member. Payload is shared with the
// stream log and other deliveries of the record: do not modify it.
type Delivery struct {
	Offset  uint64
	Payload []byte
	Attempt int // 1 = first delivery
}

// Member is one consumer of a group. Ack, Nack, Leave and InFlight may be
// called concurrently with each other and with Next; Next itself must not
// run twice at once on one member (the second call gets
// ErrConcurrentNext).
type Member struct {
	g        *Group
	id       string
	prefetch int

	// under g.mu
	inflight int
	left     bool
	busy     bool               // in Next
	wake     context.CancelFunc // set while blocked in Next
	idle     bool               // blocked in Next, in g.idle
	idleGen  uint64             // tells stale g.idle entries apart
	// inflightBytes: the payload bytes in flight (see fitsLocked).
	inflightBytes int64
	// unsent: the deliveries Next has taken and not returned yet, while
	// it reads the stream without the lock (nil otherwise).
	unsent []Delivery
}

// ID is the member's id.
func (m *Member) ID() string { return m.id }

// Prefetch is the member's in-flight limit.
func (m *Member) Prefetch() int { return m.prefetch }

// fitsLocked reports whether a record with payload p may be handed to m
// under Options.MaxInFlightBytes: it fits beside what m holds, or m holds
// no bytes (so a record larger than the bound is delivered alone, and a
// member never waits for room it cannot get). g.mu is held.
func (m *Member) fitsLocked(p []byte) bool {
	return m.inflightBytes == 0 || int64(len(p)) <= m.g.opts.MaxInFlightBytes-m.inflightBytes
}

// bytesFullLocked reports whether m holds Options.MaxInFlightBytes of
// payload or more: no record of unknown size (one to read again) is
// read for it. g.mu is held.
func (m *Member) bytesFullLocked() bool {
	return m.inflightBytes > 0 && m.inflightBytes >= m.g.opts.MaxInFlightBytes
}

// InFlight is how many deliveries the member holds (not yet acked,
// nacked or timed out).
func (m *Member) InFlight() int {
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	return m.inflight
}

// readReleasing runs read, a read of the stream that releases g.mu, with
// out, the deliveries Next has taken, parked in m.unsent: should the
// member leave or the group close meanwhile, they never reach the
// application, and Leave and Close count them as unseen. It returns out
// without the deliveries taken back meanwhile (keepHeldLocked). done:
// Next returns now, out if it holds deliveries (the error comes again at
// the next call), else the read's error. g.mu is held.
func (m *Member) readReleasing(out []Delivery, read func() error) (_ []Delivery, done bool, err error) {
	m.unsent = out
	err = read()
	m.unsent = nil
	if m.g.closed || m.left {
		return out, false, nil
	}
	out = m.keepHeldLocked(out)
	if err == nil {
		return out, false, nil
	}
	if len(out) > 0 {
		return out, true, nil
	}
	return out, true, err
}

// keepHeldLocked drops from out, the deliveries a Next took before it
// released g.mu, the ones no longer in flight to m: an ack timeout (Tick)
// took them back meanwhile, and they wait for their redelivery, are
// held by another member, or were dead-lettered. Handed to the
// application they would have two consumers hold a record at once. (Only
// m's Next delivers to m, so an entry in flight to m now is the one out
// holds.) g.mu is held.
func (m *Member) keepHeldLocked(out []Delivery) []Delivery {
	return slices.DeleteFunc(out, func(d Delivery) bool {
		e := m.g.entries[d.Offset]
		return e == nil || e.state != stInFlight || e.member != m
	})
}

// Next blocks until at least one delivery can be handed to the member,
// then returns at most min(max, prefetch-InFlight()) of them (max ≤ 0:
// no limit but the prefetch). The member's in-flight count never exceeds
// its prefetch, nor its in-flight payload bytes Options.MaxInFlightBytes
// (but for a single larger record, handed to a member holding no bytes):
// when either is full Next waits for an ack, nack or timeout, and leaves
// the work to other members. Ready redeliveries come before new records;
// new records come in offset order. Next wakes for new stream records,
// for redeliveries made ready (Nack without delay, Leave, Tick) and for
// room in the prefetch. It returns ctx's error when ctx ends, ErrClosed when the
// group closes, ErrMemberLeft after Leave, and the stream's error if the
// stream fails (e.g. commitlog.ErrClosed).
func (m *Member) Next(ctx context.Context, max int) ([]Delivery, error) {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.busy {
		return nil, ErrConcurrentNext
	}
	m.busy = true
	defer func() {
		m.busy = false
		if g.streamWaiter == m {
			g.streamWaiter = nil // it watches the stream no more
		}
		g.passOnLocked()
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Delivery
	limited := false // counted once per call in Stats.InFlightBytesLimited
	for {
		if g.closed {
			return nil, ErrClosed
		}
		if m.left {
			return nil, ErrMemberLeft
		}
		room := m.prefetch - m.inflight
		if max > 0 {
			room = min(room, max-len(out))
		}
		full := false // m's in-flight bytes are full: work is left that m may not take
		if room > 0 {
			now := g.opts.Clock.Now()
			g.promoteLocked(now)
			n := len(out)
			var load bool
			out, full, load = g.takeLocked(out, m, room, now)
			room -= len(out) - n
			if full && !limited {
				limited = true
				g.stats.InFlightBytesLimited++
			}
			if load {
				// A redelivery whose payload the group dropped while it
				// waited (a nack's delay): read it again. The read
				// releases the lock, as a refill's does.
				var done bool
				var err error
				if out, done, err = m.readReleasing(out, func() error { return g.reload(m, room) }); done {
					return out, err
				}
				continue
			}
		}
		if full {
			if len(out) > 0 {
				return out, nil // the deferred passOnLocked hands the rest on
			}
			// m holds bytes in flight (one holding none takes any record):
			// it waits for its own acks, like a member with a full
			// prefetch, and the work, and the watch on the stream if m
			// had it, go to another member.
			if g.streamWaiter == m {
				g.streamWaiter = nil
			}
			g.passOnLocked()
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := m.block(ctx, false); err != nil {
				return nil, err
			}
			continue
		}
		// Room left means ready and buf are empty: read on if the
		// stream has more, without blocking. The read releases the
		// lock: should the member leave or the group close meanwhile,
		// the deliveries taken so far (unsent) never reach the
		// application, and Leave and Close count them as unseen.
		if room > 0 && !g.refilling && g.stream.Next() > g.readPos {
			var done bool
			var err error
			if out, done, err = m.readReleasing(out, g.refill); done {
				return out, err
			}
			continue
		}
		if len(out) > 0 {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := m.block(ctx, room > 0); err != nil {
			return nil, err
		}
	}
}

// Ack marks the offsets done: they are never delivered again. With a
// StateLog, Ack returns once the acks are appended to it (durable per the
// log's sync policy); the acks take effect in memory at once, so if the
// append fails they hold until a restart, which redelivers them. With
// ctx already done Ack acks nothing and returns ctx's error. Offsets
// not in flight for this member (including ones already acked: a second
// ack is an error, not a no-op) are reported in a *NotInFlightError; the
// others are acked.
func (m *Member) Ack(ctx context.Context, offsets ...uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g := m.g
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	var bad []uint64
	var ops []op
	for _, off := range offsets {
		e := g.entries[off]
		if e == nil || e.state != stInFlight || e.member != m {
			bad = append(bad, off)
			continue
		}
		g.takeBackLocked(e)
		g.doneLocked(e)
		g.stats.Acked++
		if g.state != nil {
			ops = append(ops, op{kind: opAck, off: off})
		}
	}
	var w stateWrite
	if len(ops) > 0 {
		w = g.writeStateLocked(ops, false)
	}
	g.mu.Unlock()
	if g.hooks.ackUnlocked != nil {
		g.hooks.ackUnlocked()
	}
	err := g.awaitState(ctx, w)
	if len(bad) > 0 {
		err = errors.Join(&NotInFlightError{Group: g.name, Member: m.id, Offsets: bad}, err)
	}
	return err
}

// Nack gives a delivery back: the record is redelivered (to any member)
// once delay has passed (≤ 0: at once; otherwise it becomes ready at the
// first Tick or Next at or after the delay). The ended delivery counts as
// an attempt: if it was the last one allowed, the record is
// dead-lettered now, DeadLetter being called with ctx (a DeadLetter
// failure is counted and retried at the next Tick, not returned). An
// offset not in flight for this member is a *NotInFlightError.
func (m *Member) Nack(ctx context.Context, offset uint64, delay time.Duration) error {
	g := m.g
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	e := g.entries[offset]
	if e == nil || e.state != stInFlight || e.member != m {
		g.mu.Unlock()
		return &NotInFlightError{Group: g.name, Member: m.id, Offsets: []uint64{offset}}
	}
	g.takeBackLocked(e)
	g.stats.Nacked++
	switch {
	case g.opts.exhausted(e.attempts):
		g.doomLocked(e, "nacked")
		g.mu.Unlock()
		g.reap(ctx, e) // its own; the others wait for the next Tick
		return nil
	case delay <= 0:
		g.readyLocked(e)
		g.wakeOneLocked()
	default:
		g.delayLocked(e, g.opts.Clock.Now().Add(delay))
	}
	g.mu.Unlock()
	return nil
}

// Leave removes the member from the group. Its in-flight records are
// ready for redelivery to the other members at once, with their attempt
// counts kept; one that has used its last attempt is dead-lettered at the
// next Tick. A blocked Next returns ErrMemberLeft. Leaving twice does
// nothing.
func (m *Member) Leave() { m.leave(nil) }

// LeaveSeen is Leave for a consumer that says which of its deliveries its
// application took (seen): those go back as with Leave, their delivery
// counted as an attempt. Every other delivery in flight to it (buffered in
// the consumer, or still on its way) was never seen: it goes back without
// counting as an attempt, so a consumer leaving with a full prefetch buffer
// brings no record nobody saw closer to the dead-letter stream. A durable
// group cannot write a lowered count as an op when the delivery's count is
// already in its state log (counts there only grow): it writes a snapshot
// of its state at the next Tick or at Close instead, so only a crash
// before that makes such a record show one attempt more after the
// restart.
func (m *Member) LeaveSeen(seen ...uint64) {
	keep := make(map[uint64]bool, len(seen))
	for _, off := range seen {
		keep[off] = true
	}
	m.leave(keep)
}

// leave implements Leave (seen nil: every delivery counts) and LeaveSeen.
func (m *Member) leave(seen map[uint64]bool) {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.left {
		return
	}
	m.left = true
	if g.members[m.id] == m {
		delete(g.members, m.id)
	}
	var back []*entry
	for _, e := range g.entries {
		if e.state == stInFlight && e.member == m {
			back = append(back, e)
		}
	}
	slices.SortFunc(back, func(a, b *entry) int { return cmp.Compare(a.rec.Offset, b.rec.Offset) })
	unsent := m.unsentLocked()
	for _, e := range back {
		g.takeBackLocked(e)
		if (seen != nil && !seen[e.rec.Offset]) || unsent[e.rec.Offset] {
			g.uncountLocked(e)
		}
		if g.opts.exhausted(e.attempts) {
			g.doomLocked(e, "member left")
		} else {
			g.readyLocked(e)
		}
	}
	g.wakeLocked(m)
	if g.ready.len() > 0 {
		g.wakeOneLocked()
	}
}

// uncountLocked takes back the attempt e's last delivery counted.
func (g *Group) uncountLocked(e *entry) {
	e.attempts = max(e.attempts-1, 0)
	if g.dirty != nil {
		if _, unwritten := g.dirty[e.rec.Offset]; !unwritten {
			g.resnap = true // the log holds the higher count: only a snapshot lowers it
		}
		if e.attempts > 0 {
			g.dirty[e.rec.Offset] = e.attempts
		} else {
			delete(g.dirty, e.rec.Offset) // never delivered, as far as the log knows
		}
	}
	g.stats.Released++
}

// unsentLocked is the set of offsets of m.unsent (nil when empty): the
// deliveries a Next of m took and, the member leaving or the group
// closing while it read the stream, never returns. g.mu is held.
func (m *Member) unsentLocked() map[uint64]bool {
	if len(m.unsent) == 0 {
		return nil
	}
	set := make(map[uint64]bool, len(m.unsent))
	for _, d := range m.unsent {
		set[d.Offset] = true
	}
	return set
}
