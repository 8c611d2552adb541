package queue

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// Group is a consumer group over one stream's log: a work queue whose
// members share the records. Safe for concurrent use.
type Group struct {
	name   string
	stream commitlog.Log
	opts   Options
	state  *stateWriter // nil without Options.StateLog

	mu      sync.Mutex
	closed  bool
	members map[string]*Member
	// Members blocked in Next with room in their prefetch wait for work:
	// at most one (streamWaiter) on the stream, the others in idle, in
	// order. See wait.go.
	streamWaiter *Member
	idle         fifo[idleRef]

	// Every offset below floor is done (acked or dead-lettered). In
	// [floor, cursor) an offset is done unless it has an entry. The
	// cursor (the next never-delivered offset) is buf[0].Offset, or
	// readPos when buf is empty; buf holds records read from the stream
	// and not delivered yet.
	floor     uint64
	readPos   uint64
	buf       []commitlog.Record
	refilling bool // a member is reading the stream into buf
	entries   map[uint64]*entry

	ready    fifo[*entry] // to be redelivered now, in order
	delayed  delayHeap
	timeouts fifo[timeoutItem]
	inflight int
	doomed   []*entry       // to be dead-lettered
	dirty    map[uint64]int // durable groups: attempt counts not yet in the state log
	resnap   bool           // durable groups: a count was lowered below the log's (LeaveSeen), or a state record was not written; Tick or Close writes a snapshot
	free     []*entry       // recycled entries
	stats    Stats          // the counters; Stats() fills in the gauges

	// inflightBytes: the payload bytes of the deliveries in flight (each
	// member's are Member.inflightBytes, bounded by MaxInFlightBytes).
	inflightBytes int64
	// heldBytes: the payload bytes the entries hold, in flight or not;
	// unloaded: the entries whose payload was dropped (entry.unloaded).
	heldBytes int64
	unloaded  int

	// Dead-lettering in progress (reap): Close waits until reaping is 0
	// before it writes the group's final state; closing cancels the
	// DeadLetter calls' contexts so that it need not wait for a publish
	// held up by a subscriber. truncating counts the snapshots appended
	// whose truncation of the state log (awaitState, outside the lock) is
	// not done: Close waits for them, so that nothing touches the state
	// log once it returns. settled is signalled when either count drops
	// to 0.
	reaping    int
	truncating int
	settled    sync.Cond // L is &mu
	closing    context.Context
	stopDead   context.CancelFunc
	// abandoned: Close stopped waiting for the reaps under way
	// (CloseDeadLetterWait); they change nothing once their calls return.
	abandoned bool
	// While DeadLetter keeps failing (the dead-letter stream refuses), Tick
	// retries the waiting records at deadLetterRetryAt, deadLetterBackoff
	// after the last failed round (see deadLetterRetryMin/Max).
	deadLetterRetryAt time.Time
	deadLetterBackoff time.Duration
	// closeDone is closed when Close has finished (its final state
	// durable): a concurrent second Close waits for it.
	closeDone chan struct{}

	hooks testHooks
}

// testHooks are points where a test makes something happen in between;
// all nil outside tests, set before the group is used.
type testHooks struct {
	ackUnlocked func() // Ack released the group's lock and has not waited for its state record
	closeWaits  func() // Close waits for a dead-lettering in progress (called under the lock)
}

// Stats describe a group at one moment. The counters count since NewGroup.
type Stats struct {
	Members  int // live members
	InFlight int // deliveries not yet acked, nacked or timed out
	// InFlightBytes is the payload bytes of the deliveries in flight, all
	// members together (each bounded by Options.MaxInFlightBytes).
	InFlightBytes int64
	// Pending counts records out of flight waiting for a redelivery:
	// ready now, waiting out a nack delay or timeout backoff, or waiting
	// to be dead-lettered. New records read from the stream and not yet
	// delivered are Buffered, not Pending.
	Pending int
	// Lag is the number of stream records not done: from the oldest one
	// not acked (Floor) to the stream's Next, minus those acked or
	// dead-lettered above it. In flight and pending records count;
	// records the stream dropped before the group read them do not
	// (they count in Lost once the group reaches them).
	Lag uint64

	Delivered    uint64 // deliveries, first ones and redeliveries
	Acked        uint64 // offsets acked by members
	Nacked       uint64 // offsets nacked by members
	Released     uint64 // deliveries given back unseen (Member.LeaveSeen), not counted as attempts
	Redelivered  uint64 // deliveries with Attempt > 1
	TimedOut     uint64 // deliveries taken back by Tick after AckTimeout
	DeadLettered uint64 // records dead-lettered (done, like acked ones)
	// DeadLettersDropped counts the DeadLettered records whose dead
	// letter was dropped, not kept: no DeadLetter func, or one that
	// returned ErrDeadLetterDropped (no dead-letter stream).
	DeadLettersDropped uint64
	// DeadLettersAbandoned counts records whose dead-lettering (a
	// DeadLetter call under way, or its batch's calls not made yet) Close
	// stopped waiting for (Options.CloseDeadLetterWait): they stay pending
	// in the group's state and are dead-lettered again after a restart,
	// so the dead-letter stream may get them twice.
	DeadLettersAbandoned uint64
	// PendingBytes is the payload bytes the group holds for Pending
	// records: ready ones (given back by a nack without delay, a member
	// leaving) and ones waiting for their dead letter. A record waiting
	// out a delay holds none (Unloaded).
	PendingBytes int64
	// Unloaded counts the Pending records whose payload the group does not
	// hold: a record waiting out a nack's delay or a timeout's backoff, or
	// pending at a restart, is read again from the stream when it is
	// redelivered (Reloaded counts those reads), so that records nacked
	// with a long delay cost no payload memory however many there are.
	Unloaded int
	Reloaded uint64
	// InFlightBytesLimited counts the Next calls that handed out fewer
	// records than the member's prefetch allowed, or waited, because
	// the next record would have taken the member past
	// Options.MaxInFlightBytes.
	InFlightBytesLimited uint64

	Delayed  int    // of Pending: waiting out a nack delay or timeout backoff
	Cursor   uint64 // the next never-delivered offset
	Floor    uint64 // every offset below is done
	Buffered int    // records read from the stream, not delivered yet
	// Lost counts records the stream dropped (retention, a purge, a
	// memory ring's bound) before they were done; they are skipped, and
	// never delivered again even if the group had read them.
	Lost uint64
	// DeadLetterErrors counts DeadLetter calls that failed (retried at
	// the next Tick); StateErrors counts failed state-log appends.
	DeadLetterErrors, StateErrors uint64
}

// NewGroup returns the consumer group name over stream. Without a
// StateLog, or with an empty one, the group starts at stream.Oldest().
// With a StateLog that holds state, the group is rebuilt from it: done
// records stay done, and every record that was delivered and not done
// (in flight at the crash or pending) is pending again, its attempt count
// kept; they are read back from the stream here.
func NewGroup(name string, stream commitlog.Log, opts Options) (*Group, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Group{
		name:    name,
		stream:  stream,
		opts:    opts,
		members: make(map[string]*Member),
		entries: make(map[uint64]*entry),
	}
	g.settled.L = &g.mu
	g.closeDone = make(chan struct{})
	g.closing, g.stopDead = context.WithCancel(context.Background())
	if opts.StateLog == nil {
		g.floor = g.startOffset()
		g.readPos = g.floor
		return g, nil
	}
	g.dirty = make(map[uint64]int)
	if err := g.load(); err != nil {
		return nil, fmt.Errorf("queue: group %q: %w", name, err)
	}
	return g, nil
}

// startOffset is where a new group starts: Options.StartAt kept within
// the stream's retained range, or its oldest record.
func (g *Group) startOffset() uint64 {
	oldest := g.stream.Oldest()
	if g.opts.StartAt == nil {
		return oldest
	}
	return min(max(*g.opts.StartAt, oldest), g.stream.Next())
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// cursorLocked is the next never-delivered offset.
func (g *Group) cursorLocked() uint64 {
	if len(g.buf) > 0 {
		return g.buf[0].Offset
	}
	return g.readPos
}

// Stats returns the group's gauges and counters.
func (g *Group) Stats() Stats {
	next, oldest := g.stream.Next(), g.stream.Oldest()
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Members = len(g.members)
	s.InFlight = g.inflight
	s.InFlightBytes = g.inflightBytes
	s.PendingBytes = g.heldBytes - g.inflightBytes
	s.Unloaded = g.unloaded
	s.Pending = len(g.entries) - g.inflight
	s.Buffered = len(g.buf)
	s.Delayed = len(g.delayed)
	s.Cursor = g.cursorLocked()
	s.Floor = g.floor
	s.Lag = uint64(len(g.entries)) + uint64(len(g.buf))
	if from := max(g.readPos, oldest); next > from { // records the stream dropped are not lag, but lost
		s.Lag += next - from
	}
	return s
}

// Due reports whether Tick at now would have anything to do: an ack
// deadline or a delayed redelivery due, records to dead-letter, records
// ready to hand out while a member waits for work, attempt counts or a
// snapshot to write. A caller ticking many groups can skip the idle ones.
// It drops the timeouts of deliveries settled since, as Tick would. It
// does not wait for the group's lock: a group busy elsewhere is reported
// due (Tick will wait for it).
func (g *Group) Due(now time.Time) bool {
	if !g.mu.TryLock() {
		return true
	}
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	for g.timeouts.len() > 0 && !g.timeouts.front().live() {
		g.timeouts.pop() // acked or nacked since: what Tick would drop
	}
	if g.timeouts.len() > 0 && !g.timeouts.front().e.deadline.After(now) {
		return true
	}
	if len(g.delayed) > 0 && !g.delayed[0].due.After(now) {
		return true
	}
	// Records ready to hand out need Tick only to wake a member waiting
	// for work; with none waiting, the next Next takes them.
	if g.ready.len() > 0 && (g.streamWaiter != nil || g.idle.len() > 0) {
		return true
	}
	return len(g.doomed) > 0 || len(g.dirty) > 0 || g.resnap
}

// Tick takes back the deliveries whose ack deadline has passed (they are
// redelivered after the timeout backoff, or dead-lettered when out of
// attempts), makes due redeliveries ready, calls DeadLetter for dead
// records, and writes delivery attempt counts not yet in the state log.
// The server calls it from a ticker; its period bounds how late a timeout
// or delayed redelivery can be. Tests call it with a fake time.
func (g *Group) Tick(now time.Time) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	for g.timeouts.len() > 0 {
		it := g.timeouts.front()
		if !it.live() {
			g.timeouts.pop()
			continue
		}
		if it.e.deadline.After(now) {
			break
		}
		g.timeouts.pop()
		e := it.e
		g.takeBackLocked(e)
		g.stats.TimedOut++
		if g.opts.exhausted(e.attempts) {
			g.doomLocked(e, "ack timeout")
		} else {
			g.delayLocked(e, now.Add(g.opts.backoff(e.attempts)))
		}
	}
	g.promoteLocked(now)
	if g.ready.len() > 0 {
		g.wakeOneLocked()
	}
	w := g.writeStateLocked(nil, g.takeResnapLocked())
	backingOff := now.Before(g.deadLetterRetryAt) // dead letters keep failing (reap)
	g.mu.Unlock()
	// The counts are written before DeadLetter is called (it may take a
	// while, a publish), in the group's lock: what a member changes
	// meanwhile (a count LeaveSeen lowers, which a snapshot by Close
	// writes) lands after them in the state log.
	g.awaitState(context.Background(), w) // failures are counted in Stats.StateErrors
	if !backingOff {
		g.reap(context.Background(), nil)
	}
}

// takeResnapLocked reports whether the group's next state record must be
// a snapshot (see Group.resnap), and clears it: writeStateLocked sets it
// again if that snapshot fails.
func (g *Group) takeResnapLocked() bool {
	r := g.resnap
	g.resnap = false
	return r
}

// Close stops the group: blocked and later Next calls, and Join, Ack and
// Nack, return ErrClosed. A dead-lettering in progress (a Tick's, a
// Nack's) is finished first: the contexts of its DeadLetter calls are
// cancelled, Close waits for them to return and for the state record of
// the dead letters they accepted; doomed records not yet dead-lettered
// stay pending, and are dead-lettered after a restart. A DeadLetter call
// that ignores its context is waited for at most
// Options.CloseDeadLetterWait: then Close gives up on it, its record stays
// pending (Stats.DeadLettersAbandoned) and nothing it does once it returns
// changes the group's state. Delivery attempt
// counts not yet in the state log are then written (as a snapshot when
// LeaveSeen lowered counts the log holds, or a dead-lettering was
// abandoned), and Close returns once what the group wrote to its state
// log is durable per its sync policy, even when its own last record could
// not be written (it returns that error, and any of the wait). Close
// does not close the stream or the state log (the caller owns them), and
// does not touch the state log once it returns. Closing again returns nil
// once the first Close has finished. Close must not be called from a DeadLetter
// func (it would wait for itself).
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		<-g.closeDone // a Close under way: its final state is durable once it is done
		return nil
	}
	defer close(g.closeDone)
	g.closed = true
	g.stopDead()
	g.wakeEveryoneLocked()
	if g.reaping > 0 {
		g.awaitReapsLocked()
	}
	// A Next reading the stream returns ErrClosed: the deliveries it
	// took never reach the application.
	for _, m := range g.members {
		for off := range m.unsentLocked() {
			if e := g.entries[off]; e != nil && e.state == stInFlight && e.member == m {
				g.uncountLocked(e)
			}
		}
	}
	w := g.writeStateLocked(nil, g.takeResnapLocked())
	// The records queued before Close's own (acks whose callers gave up
	// waiting, a dead-lettering's, attempt counts): Close returns only
	// once they are durable too, or says why they are not, even when its
	// own record was not written.
	var before stateWrite
	if g.state != nil {
		before.req = g.state.queueLocked(&stateReq{}) // a barrier
	}
	g.mu.Unlock()
	err := g.awaitState(context.Background(), w)
	if before.req != nil {
		if last := w.last(); last == nil || last.err != nil {
			err = errors.Join(err, g.awaitState(context.Background(), before))
		} else {
			g.state.flush(before.req) // nothing to append: what w waited for covers it
		}
	}
	// Snapshots appended before (by an Ack, a reap) truncate the state
	// log once durable, which the wait above made them: wait for that.
	g.mu.Lock()
	for g.truncating > 0 {
		g.settled.Wait()
	}
	g.mu.Unlock()
	return err
}

// Join adds a member. memberID must not be the id of a live member
// (ErrMemberExists); the id of one that left may be reused. prefetch is
// the member's in-flight limit (≤ 0: Options.DefaultPrefetch).
func (g *Group) Join(memberID string, prefetch int) (*Member, error) {
	if prefetch <= 0 {
		prefetch = g.opts.DefaultPrefetch
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	if _, ok := g.members[memberID]; ok {
		return nil, fmt.Errorf("queue: group %q: member %q: %w", g.name, memberID, ErrMemberExists)
	}
	m := &Member{g: g, id: memberID, prefetch: prefetch}
	g.members[memberID] = m
	return m, nil
}

// takeLocked appends to out up to n deliveries for m: ready
// redeliveries first, then new records in offset order. It stops early,
// with full set, at a record that would take m's in-flight bytes past
// Options.MaxInFlightBytes (unless m holds none: a record larger than
// the bound goes to a member that holds nothing), and with load set at a
// ready record whose payload is to be read again (see Group.reload).
func (g *Group) takeLocked(out []Delivery, m *Member, n int, now time.Time) (_ []Delivery, full, load bool) {
	k := min(n, g.ready.len()+len(g.buf))
	if k == 0 {
		return out, false, false
	}
	out = slices.Grow(out, k)
	deadline := now.Add(g.opts.AckTimeout)
	// Records the stream no longer holds (a purge, or retention, removed
	// them after the group read them) are not delivered: see goneLocked.
	oldest := g.stream.Oldest()
	for delivered := 0; delivered < n; {
		if g.ready.len() > 0 {
			if e := g.ready.front(); e.rec.Offset >= oldest && e.unloaded {
				if m.bytesFullLocked() {
					full = true // its payload is not read for a member that cannot take it
				} else {
					load = true // Next reads its payload again (reload)
				}
				break
			}
			if e := g.ready.front(); e.rec.Offset >= oldest && !m.fitsLocked(e.rec.Payload) {
				full = true
				break
			}
			if e := g.ready.pop(); !g.goneLocked(e, oldest) {
				out = g.deliverLocked(out, m, e, deadline)
				delivered++
			}
			continue
		}
		if len(g.buf) == 0 {
			break
		}
		rec := g.buf[0]
		if rec.Offset >= oldest && !m.fitsLocked(rec.Payload) {
			full = true
			break
		}
		g.buf[0] = commitlog.Record{}
		g.buf = g.buf[1:]
		if rec.Offset < oldest {
			g.stats.Lost++
			g.skippedLocked()
			continue
		}
		out = g.deliverLocked(out, m, g.newEntryLocked(rec, 0), deadline)
		delivered++
	}
	if len(g.buf) == 0 {
		g.advanceFloorLocked() // past records skipped at the end of the buffer
	}
	return out, full, load
}

// goneLocked drops e, not in flight, when the stream no longer holds its
// record (offset below oldest): a purge or retention removed it after
// the group had read it. Such a record is neither redelivered nor
// dead-lettered: it is done, counted lost, as the records the group
// skips when it reads past them (refill), and the group's next state
// write is a snapshot that says so.
func (g *Group) goneLocked(e *entry, oldest uint64) bool {
	if e.rec.Offset >= oldest {
		return false
	}
	g.stats.Lost++
	g.doneLocked(e)
	g.skippedLocked()
	return true
}

// skippedLocked notes that the group skipped records the stream no
// longer holds: the state log must record that (with a snapshot) before
// anything beyond them; see stateWriter.gap. Tick or Close writes it if
// nothing else does.
func (g *Group) skippedLocked() {
	if g.state != nil {
		g.state.gap = true
		g.resnap = true
	}
}

// maxFreeEntries bounds Group.free: beyond it, done entries are left to
// the garbage collector, so a burst's entries do not outlive it.
const maxFreeEntries = 1024

func (g *Group) newEntryLocked(rec commitlog.Record, attempts int) *entry {
	var e *entry
	if n := len(g.free); n > 0 {
		e = g.free[n-1]
		g.free = g.free[:n-1]
	} else {
		e = &entry{}
	}
	e.rec, e.attempts, e.heapIdx = rec, attempts, -1
	g.entries[rec.Offset] = e
	g.heldBytes += int64(len(rec.Payload))
	return e
}

// unloadLocked drops e's payload (e waits out a delay, or was pending at
// a restart): Next reads it again before the redelivery (reload).
func (g *Group) unloadLocked(e *entry) {
	if e.unloaded {
		return
	}
	g.heldBytes -= int64(len(e.rec.Payload))
	e.rec.Payload = nil
	e.unloaded = true
	g.unloaded++
}

func (g *Group) deliverLocked(out []Delivery, m *Member, e *entry, deadline time.Time) []Delivery {
	if e.attempts < maxAttemptsEncoded { // saturates: the state log holds no more
		e.attempts++
	}
	e.state = stInFlight
	e.member = m
	e.gen++
	e.deadline = deadline
	g.timeouts.push(timeoutItem{e: e, gen: e.gen})
	g.inflight++
	m.inflight++
	g.inflightBytes += int64(len(e.rec.Payload))
	m.inflightBytes += int64(len(e.rec.Payload))
	g.stats.Delivered++
	if e.attempts > 1 {
		g.stats.Redelivered++
	}
	if g.dirty != nil {
		g.dirty[e.rec.Offset] = e.attempts
	}
	g.trimTimeoutsLocked()
	return append(out, Delivery{Offset: e.rec.Offset, Payload: e.rec.Payload, Attempt: e.attempts})
}

// trimTimeoutsLocked drops stale timeout items when they outnumber the
// live ones, so the queue stays within about twice the in-flight count
// however rarely Tick runs.
func (g *Group) trimTimeoutsLocked() {
	if n := g.timeouts.len(); n >= 1024 && n > 2*g.inflight {
		g.timeouts.filter(timeoutItem.live)
	}
}

// takeBackLocked ends e's delivery (ack, nack, timeout, leave).
func (g *Group) takeBackLocked(e *entry) {
	m := e.member
	e.member = nil
	e.state = 0
	g.inflight--
	m.inflight--
	g.inflightBytes -= int64(len(e.rec.Payload))
	m.inflightBytes -= int64(len(e.rec.Payload))
	g.wakeLocked(m) // its prefetch has room
}

// doneLocked removes e (acked or dead-lettered) and advances the floor.
func (g *Group) doneLocked(e *entry) {
	off := e.rec.Offset
	delete(g.entries, off)
	if e.unloaded {
		g.unloaded--
	} else {
		g.heldBytes -= int64(len(e.rec.Payload))
	}
	*e = entry{gen: e.gen}
	if len(g.free) < maxFreeEntries {
		g.free = append(g.free, e)
	}
	if off == g.floor {
		g.advanceFloorLocked()
	}
}

func (g *Group) advanceFloorLocked() {
	cursor := g.cursorLocked()
	if len(g.entries) == 0 {
		g.floor = cursor
		return
	}
	for g.floor < cursor {
		if _, ok := g.entries[g.floor]; ok {
			return
		}
		g.floor++
	}
}

func (g *Group) readyLocked(e *entry) {
	e.state = stReady
	g.ready.push(e)
}

// delayLocked has e wait until due for its redelivery, without its
// payload: a nack's delay may be long, and the records waiting many.
func (g *Group) delayLocked(e *entry, due time.Time) {
	e.state = stDelayed
	e.due = due
	g.unloadLocked(e)
	heap.Push(&g.delayed, e)
}

func (g *Group) doomLocked(e *entry, why string) {
	if g.goneLocked(e, g.stream.Oldest()) {
		return // not dead-lettered: its record is gone from the stream
	}
	e.state = stDoomed
	e.reason = fmt.Sprintf("max attempts (%d) exceeded: %s", g.opts.MaxAttempts, why)
	g.doomed = append(g.doomed, e)
}

// promoteLocked makes the delayed entries due by now ready.
func (g *Group) promoteLocked(now time.Time) {
	for len(g.delayed) > 0 && !g.delayed[0].due.After(now) {
		g.readyLocked(heap.Pop(&g.delayed).(*entry))
	}
}

// takeDirtyLocked appends to ops the attempt counts not yet in the state
// log of offsets not done, and forgets them.
func (g *Group) takeDirtyLocked(ops []op) []op {
	for off, a := range g.dirty {
		if _, ok := g.entries[off]; ok {
			ops = append(ops, op{kind: opDelivered, off: off, attempts: a})
		}
	}
	clear(g.dirty)
	return ops
}

// refill reads the next batch of the stream into buf. The caller holds
// the lock and has checked that buf is empty and nobody else refills; the
// lock is released during the read. A stream offset that is gone (its
// retention ran ahead of the group) is skipped and counted as lost.
func (g *Group) refill() error {
	g.refilling = true
	from := g.readPos
	g.mu.Unlock()
	recs, err := g.stream.Read(from, g.opts.ReadBatch, 0)
	g.ownPayloads(recs)
	g.mu.Lock()
	g.refilling = false
	var tooOld *commitlog.TooOldError
	switch {
	case errors.As(err, &tooOld) && tooOld.Oldest > from:
		g.stats.Lost += tooOld.Oldest - from
		g.readPos = tooOld.Oldest
		g.advanceFloorLocked()
		g.skippedLocked()
		return nil
	case err != nil:
		return fmt.Errorf("queue: group %q: read stream at %d: %w", g.name, from, err)
	case len(recs) > 0:
		g.buf = recs
		g.readPos = recs[len(recs)-1].Offset + 1
	}
	return nil
}

// ownPayloads gives each payload of recs, read from the stream, memory of
// its own, unless the stream hands out payloads that own theirs
// (commitlog.Memory keeps the appended ones). A disk stream's payloads
// share read buffers of up to commitlog.MaxReadBuffer: one record left
// in flight (or waiting for its redelivery) would keep its whole buffer
// alive, bytes that MaxInFlightBytes and Stats.PendingBytes do not count.
// A payload that large has a buffer of its own and is kept as it is. One
// copy per record read, without the group's lock.
func (g *Group) ownPayloads(recs []commitlog.Record) {
	if _, owned := g.stream.(*commitlog.Memory); owned {
		return
	}
	for i := range recs {
		if p := recs[i].Payload; len(p) > 0 && len(p) < commitlog.MaxReadBuffer {
			recs[i].Payload = slices.Clone(p)
		}
	}
}

// reload reads again from the stream the payloads of up to n unloaded
// records at the front of the ready queue (takeLocked stopped at one),
// for m's Next: no more payload than m may take (Options.MaxInFlightBytes
// less what it holds; at least one record), so the records it cannot
// take stay unloaded. The caller holds the lock; it is released during
// the reads, like refill's. A record the stream no longer holds is left
// for takeLocked, which finds it gone (lost); one the stream does not
// return though it should is counted lost here, so that Next never
// waits on it.
func (g *Group) reload(m *Member, n int) error {
	var offs []uint64
	for _, e := range g.ready.items[g.ready.head:] {
		if len(offs) == n {
			break
		}
		if e.unloaded {
			offs = append(offs, e.rec.Offset) // in delivery order: the front's first
		}
	}
	budget := max(g.opts.MaxInFlightBytes-m.inflightBytes, 1)
	g.mu.Unlock()
	var got []commitlog.Record // ascending once sorted
	var rerr error
	read := int64(0) // payload bytes read
	asked := offs[:0:0]
	for i := 0; i < len(offs) && read < budget; {
		run := 1
		for i+run < len(offs) && offs[i+run] == offs[i]+uint64(run) {
			run++
		}
		recs, err := g.stream.Read(offs[i], run, int(min(budget-read, math.MaxInt32)))
		var tooOld *commitlog.TooOldError
		switch {
		case errors.As(err, &tooOld):
			// Gone from the stream: takeLocked counts them lost. The
			// rest of the run may still be there.
			run = 1
		case err != nil:
			rerr = fmt.Errorf("queue: group %q: read stream at %d: %w", g.name, offs[i], err)
		default:
			g.ownPayloads(recs)
			got = append(got, recs...)
			for _, r := range recs {
				read += int64(len(r.Payload))
			}
			// A read returns no more than the bytes asked for (about
			// commitlog.DefaultReadBytes at most), however many records
			// it is asked for: the rest of the run is read next, not
			// taken for lost.
			if len(recs) > 0 && len(recs) < run && recs[0].Offset == offs[i] {
				run = len(recs)
			}
		}
		if rerr != nil {
			break
		}
		asked = append(asked, offs[i:i+run]...)
		i += run
	}
	offs = asked // the offsets whose records were asked for
	slices.SortFunc(got, func(a, b commitlog.Record) int { return cmp.Compare(a.Offset, b.Offset) })
	g.mu.Lock()
	for _, rec := range got {
		if e := g.entries[rec.Offset]; e != nil && e.unloaded {
			e.rec.Payload = rec.Payload
			e.unloaded = false
			g.unloaded--
			g.heldBytes += int64(len(rec.Payload))
			g.stats.Reloaded++
		}
	}
	if rerr != nil {
		return rerr
	}
	// A record asked for and not returned, that the stream still claims
	// to hold (a stream that lost it some other way): lost, not waited on.
	oldest := g.stream.Oldest()
	for _, off := range offs {
		if e := g.entries[off]; e != nil && e.unloaded && e.state == stReady && off >= oldest {
			if _, ok := slices.BinarySearchFunc(got, off, func(r commitlog.Record, o uint64) int { return cmp.Compare(r.Offset, o) }); !ok {
				g.unloadedGoneLocked(e)
			}
		}
	}
	return nil
}

// unloadedGoneLocked drops e, ready and unloaded, whose record the stream
// did not return: lost. It leaves the ready queue (filtered out).
func (g *Group) unloadedGoneLocked(e *entry) {
	g.ready.filter(func(x *entry) bool { return x != e })
	g.stats.Lost++
	g.doneLocked(e)
	g.skippedLocked()
}
