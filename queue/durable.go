package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/felixmq/felix/commitlog"
)

// stateWriter appends a group's state records to its StateLog.
//
// The group decides each record (its content, and its place in the log)
// under its lock, and queues it there (queueLocked): the queue's order is
// the order in which the changes took effect in memory, so a snapshot
// follows every record whose content it contains and precedes every one
// it does not. The records are appended outside the group's lock, in
// queue order, by whichever of their callers comes first (flush: the
// others wait for it, and their records share its write call), and their
// durability (the fsync under commitlog.SyncAlways, shared by concurrent
// writers) is awaited after that (awaitState). So an append that rolls
// the log's segment, which fsyncs the full segment before the next one
// starts, holds up the state writes queued behind it, never the group's
// other work (Next, Nack, Join, Leave, Stats); and a state log opened
// with commitlog.Options.RollInBackground holds up no state write for
// that fsync.
type stateWriter struct {
	log   commitlog.Log
	split splitAppender // log as one that appends without waiting; nil if it cannot
	every int64

	// under the group's lock
	since int64 // records queued after the latest snapshot queued
	// gap: the group skipped records the stream no longer holds (refill)
	// since the latest snapshot was captured. Until a snapshot records the
	// cursor past them, the group writes snapshots, not ops: a replay takes
	// every offset between a snapshot's cursor and an op's as delivered,
	// and would make each skipped record pending again (one entry per
	// record: a purge of millions of records would be read back one by
	// one at a restart, and counted as lost once more).
	gap bool

	mu      sync.Mutex // after the group's lock, never before it
	cond    sync.Cond  // L is &mu; signalled when a flush ends
	queue   []*stateReq
	writing bool // a flush is appending records taken off the queue

	// Only the flush that is writing (or load, before the group is used)
	// touches these.
	ref uint64 // offset of the latest snapshot written
	end uint64 // the offset after the last record appended
	// gapOpen: a snapshot that recorded skipped records could not be
	// written. Ops records are refused until a snapshot is: one lying
	// beyond the skipped records with only an older snapshot before it
	// would make them pending again at a replay (see gap).
	gapOpen bool
}

// stateReq is one state record queued for the log: ops, a snapshot, or
// nothing (a barrier: its flush returns once the records before it are
// appended, or were refused).
type stateReq struct {
	ops  []op
	snap *snapshot
	gap  bool // snap records the cursor past skipped records

	// Set by the flush that handled it, read once done (both under
	// stateWriter.mu).
	done bool
	end  uint64 // the log's end after it: its record and all before it, as far as they were appended
	err  error  // its record was not appended
}

// errStateGap refuses an ops record queued after a snapshot that had to
// record skipped records and could not be written.
var errStateGap = errors.New("an earlier state snapshot could not be written")

// splitAppender is a log whose append and wait for durability are two
// calls (commitlog.DiskLog): the group appends, then waits. A StateLog
// without them (commitlog.Memory, which never waits) is appended to with
// Append.
type splitAppender interface {
	AppendNoWait(payloads [][]byte) (first, end uint64, err error)
	WaitDurable(ctx context.Context, end uint64) error
}

// stateWrite is what a state write under the group's lock leaves for
// awaitState: the records it queued (nil: none).
type stateWrite struct {
	req  *stateReq // the record carrying the write's change
	snap *stateReq // a snapshot queued after it (SnapshotEvery), or nil
}

// last is the write's last record queued, or nil.
func (w stateWrite) last() *stateReq {
	if w.snap != nil {
		return w.snap
	}
	return w.req
}

// queueLocked queues r for the log; g.mu is held.
func (s *stateWriter) queueLocked(r *stateReq) *stateReq {
	s.mu.Lock()
	s.queue = append(s.queue, r)
	s.mu.Unlock()
	return r
}

// flush returns once r, and so every record queued before it, was handled
// (appended, or refused). If no flush is writing, this one appends the
// records queued so far; else it waits for that flush, and writes the
// records queued meanwhile if nobody else has started to. It ignores
// contexts: a record queued must be appended, in its turn, before any
// queued after it.
func (s *stateWriter) flush(r *stateReq) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !r.done {
		if s.writing {
			s.cond.Wait()
			continue
		}
		batch := s.queue
		s.queue = nil
		s.writing = true
		s.mu.Unlock()
		s.write(batch)
		s.mu.Lock()
		s.writing = false
		for _, q := range batch {
			q.done = true
		}
		s.cond.Broadcast()
	}
}

// write appends the records of batch, in order: the ops records up to a
// snapshot, and the snapshot, share one append call (the ops records
// after a snapshot name it, and its offset is known once it is written).
func (s *stateWriter) write(batch []*stateReq) {
	var payloads [][]byte
	var run []*stateReq // the run's records, barriers and refused ones included
	for i, q := range batch {
		run = append(run, q)
		switch {
		case q.snap != nil:
			payloads = append(payloads, appendSnapshot(nil, q.snap))
		case q.ops != nil && s.gapOpen:
			q.err = errStateGap
		case q.ops != nil:
			payloads = append(payloads, appendOps(nil, s.ref, q.ops))
		}
		if q.snap == nil && i < len(batch)-1 {
			continue
		}
		first, err := s.append(payloads)
		if err == nil && len(payloads) > 0 {
			s.end = first + uint64(len(payloads))
		}
		k := uint64(0)
		for _, p := range run {
			written := (p.snap != nil || p.ops != nil) && p.err == nil
			switch {
			case written && err == nil:
				k++
				p.end = first + k
			case written:
				p.err = err
				p.end = s.end
			default: // a barrier, or refused: the records before it
				p.end = s.end
			}
		}
		if q.snap != nil {
			if err == nil {
				s.ref, s.gapOpen = s.end-1, false
			} else if q.gap {
				s.gapOpen = true
			}
		}
		payloads, run = payloads[:0], run[:0]
	}
}

// append appends payloads (none: nothing) and returns the first one's
// offset.
func (s *stateWriter) append(payloads [][]byte) (first uint64, err error) {
	if len(payloads) == 0 {
		return 0, nil
	}
	if s.split != nil {
		first, _, err = s.split.AppendNoWait(payloads)
		return first, err
	}
	return s.log.Append(context.Background(), payloads)
}

// writeStateLocked queues ops, with the attempt counts not yet in the
// state log, as one ops record (nothing without a StateLog or without
// ops); or, with snap (a count was lowered, a write failed) or after
// skipped records (gap), a snapshot of the whole state, which holds what
// ops hold. After SnapshotEvery records it queues a snapshot too. A
// failed append of the record carrying ops is counted and has the next
// Tick (or Close) write a snapshot, which carries them: so an ack refused
// by a full disk becomes durable as soon as there is room. g.mu is held;
// the caller passes the result to awaitState once it has released it.
func (g *Group) writeStateLocked(ops []op, snap bool) stateWrite {
	s := g.state
	if s == nil {
		return stateWrite{}
	}
	if snap || s.gap {
		return stateWrite{req: g.snapshotLocked()}
	}
	ops = g.takeDirtyLocked(ops)
	if len(ops) == 0 {
		return stateWrite{}
	}
	w := stateWrite{req: s.queueLocked(&stateReq{ops: ops})}
	if s.since++; s.since >= s.every {
		w.snap = g.snapshotLocked()
	}
	return w
}

// snapshotLocked queues the group's whole state; g.mu is held. The
// attempt counts it holds are no longer dirty, and it records the cursor
// past any records skipped.
func (g *Group) snapshotLocked() *stateReq {
	s := g.state
	snap := g.captureLocked()
	r := &stateReq{snap: &snap, gap: s.gap}
	clear(g.dirty)
	s.gap = false
	s.since = 0
	g.truncating++ // awaitState truncates, and Close waits for it
	return s.queueLocked(r)
}

// awaitState appends, without the group's lock, the state records w
// queued (and every record queued before them), waits until they are
// durable per the state log's sync policy, and then drops the state-log
// segments before the snapshot w wrote, if any. A failed append or wait
// (ctx ended, a failed fsync) is counted, and the next Tick (or Close)
// writes a snapshot, which carries the change. The write fails when its
// change reached no record appended (a periodic snapshot's failure is
// not the write's once its ops record is appended; a snapshot carries
// what the ops record before it held), or the wait failed. Every
// stateWrite a write under the lock returns goes through awaitState (a
// snapshot's truncation is counted in Group.truncating until it is done).
func (g *Group) awaitState(ctx context.Context, w stateWrite) error {
	last := w.last()
	if last == nil {
		return nil
	}
	s := g.state
	s.flush(last)
	var appendErr, waitErr error
	if w.req.err != nil && (w.snap == nil || w.snap.err != nil) {
		appendErr = w.req.err
	}
	if appendErr == nil && s.split != nil {
		waitErr = s.split.WaitDurable(ctx, max(w.req.end, last.end))
	}
	var snap *stateReq // the snapshot w queued (w.req, or w.snap after it)
	if last.snap != nil {
		snap = last
	}
	truncFailed := false
	if snap != nil && snap.err == nil && waitErr == nil && appendErr == nil {
		truncFailed = g.truncateState(snap.end - 1)
	}
	failed := w.req.err != nil || (w.snap != nil && w.snap.err != nil) || waitErr != nil
	if failed || snap != nil {
		g.mu.Lock()
		for _, r := range []*stateReq{w.req, w.snap} {
			if r != nil && r.err != nil {
				g.stats.StateErrors++
				if r.gap {
					s.gap = true // its snapshot is still to be written
				}
			}
		}
		if waitErr != nil {
			g.stats.StateErrors++
		}
		if failed {
			g.resnap = true // the next Tick (or Close) writes a snapshot
		}
		if truncFailed {
			g.stats.StateErrors++ // nothing lost: no snapshot needed
		}
		if snap != nil {
			if g.truncating--; g.truncating == 0 {
				g.settled.Broadcast() // Close waits for no truncation
			}
		}
		g.mu.Unlock()
	}
	switch {
	case appendErr != nil:
		return g.stateWriteError(w.req, appendErr)
	case waitErr != nil:
		return g.stateWriteError(last, waitErr)
	}
	return nil
}

// stateWriteError is err, the failure of r's append or wait, as a
// *StateWriteError.
func (g *Group) stateWriteError(r *stateReq, err error) error {
	what := "state"
	if r.snap != nil {
		what = "state snapshot"
	}
	return &StateWriteError{Group: g.name, What: what, Err: err}
}

// snapshot writes a snapshot of the group's state and waits for it.
func (g *Group) snapshot(ctx context.Context) error {
	g.mu.Lock()
	w := stateWrite{req: g.snapshotLocked()}
	g.mu.Unlock()
	return g.awaitState(ctx, w)
}

// headTruncater is a state log that can drop its oldest records
// (commitlog.DiskLog, which syncs the rest before it deletes anything).
type headTruncater interface {
	TruncateBefore(offset uint64) error
}

// truncateState drops the state-log segments wholly before the snapshot at
// off: a replay starts at the latest snapshot, so they are never read
// again. The log syncs the snapshot before it deletes a segment, so a
// crash cannot leave a log whose only snapshots were deleted, and does no
// I/O when there is nothing to delete. It reports a failure, which the
// caller counts; the log just stays longer.
func (g *Group) truncateState(off uint64) (failed bool) {
	t, ok := g.state.log.(headTruncater)
	return ok && t.TruncateBefore(off) != nil
}

func (g *Group) captureLocked() snapshot {
	snap := snapshot{name: g.name, floor: g.floor, cursor: g.cursorLocked()}
	snap.pending = make([]pendingRec, 0, len(g.entries))
	for off, e := range g.entries {
		snap.pending = append(snap.pending, pendingRec{off: off, attempts: e.attempts})
	}
	slices.SortFunc(snap.pending, func(a, b pendingRec) int { return cmp.Compare(a.off, b.off) })
	return snap
}

// load rebuilds the group from its StateLog, or starts a new group at
// the stream's Oldest (or Options.StartAt) and writes its first snapshot.
func (g *Group) load() error {
	sl := g.opts.StateLog
	g.state = &stateWriter{log: sl, every: int64(g.opts.SnapshotEvery)}
	g.state.cond.L = &g.state.mu
	g.state.split, _ = sl.(splitAppender)
	r, err := replayState(g.name, sl, g.stream.Next())
	if err != nil {
		return err
	}
	if r == nil {
		start := g.startOffset()
		g.floor, g.readPos = start, start
		snap := snapshot{name: g.name, floor: start, cursor: start}
		off, err := sl.Append(context.Background(), [][]byte{appendSnapshot(nil, &snap)})
		if err != nil {
			return fmt.Errorf("write first state snapshot: %w", err)
		}
		g.state.ref, g.state.end = off, off+1
		return nil
	}
	g.state.ref, g.state.end = r.ref, sl.Next()
	g.state.since = int64(r.records)
	dropped, err := g.restore(r)
	if err != nil || !dropped {
		return err
	}
	// The log holds state the group dropped: acks and attempt counts of
	// offsets beyond the stream's end, which the stream will give to new
	// records, or pending records the stream no longer has. A snapshot
	// now makes the next replay start from what the group holds.
	if err := g.snapshot(context.Background()); err != nil {
		return err
	}
	return nil
}

// restore makes every pending offset of r ready for redelivery (or
// doomed, out of attempts), reading the records back from the stream.
// State beyond the stream's end (a stream that lost its tail) is dropped;
// records the stream no longer has are counted as lost. dropped: some of
// r's state was dropped so.
func (g *Group) restore(r *rebuilt) (dropped bool, err error) {
	end := g.stream.Next()
	cursor := min(r.cursor, end)
	dropped = cursor < r.cursor
	offs := make([]uint64, 0, len(r.pending))
	for off := range r.pending {
		if off < cursor {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	var got []commitlog.Record // consecutive records from got[0].Offset
	for i, off := range offs {
		if len(got) == 0 || off < got[0].Offset || off-got[0].Offset >= uint64(len(got)) {
			run := 1
			for i+run < len(offs) && run < g.opts.ReadBatch && offs[i+run] == off+uint64(run) {
				run++
			}
			recs, err := g.stream.Read(off, run, 0)
			var tooOld *commitlog.TooOldError
			switch {
			case errors.As(err, &tooOld):
				got = nil
				g.stats.Lost++
				dropped = true
				continue
			case err != nil:
				return false, fmt.Errorf("read stream at %d: %w", off, err)
			case len(recs) == 0:
				got = nil
				g.stats.Lost++
				dropped = true
				continue
			}
			got = recs
		}
		e := g.newEntryLocked(got[off-got[0].Offset], r.pending[off])
		g.unloadLocked(e) // however many: Next, or the dead-lettering, reads it again
		if g.opts.exhausted(e.attempts) {
			g.doomLocked(e, "pending at restart")
		} else {
			g.readyLocked(e)
		}
	}
	g.floor = min(r.floor, cursor)
	g.readPos = cursor
	g.advanceFloorLocked()
	return dropped, nil
}

// rebuilt is a group's durable state after a replay: every offset below
// floor is done; in [floor, cursor) the offsets in pending (with their
// attempt counts) are not; none from cursor on was delivered.
type rebuilt struct {
	name          string // the group's name, as its snapshot holds it
	floor, cursor uint64
	pending       map[uint64]int
	ref           uint64 // state-log offset of the snapshot replayed from
	records       int    // records replayed after it
	doneAbove     map[uint64]bool
	triedAbove    map[uint64]int
	end           uint64
}

// replayState reads the state log from the latest snapshot (found through
// the reference the last record carries) to its end. nil, nil: the log
// is empty. streamEnd is the stream's Next: see finish. An empty name
// accepts the snapshots of any group.
func replayState(name string, sl commitlog.Log, streamEnd uint64) (*rebuilt, error) {
	next := sl.Next()
	if next == sl.Oldest() {
		return nil, nil
	}
	last, err := readState(sl, next-1)
	if err != nil {
		return nil, err
	}
	ref := last.ref
	if last.kind == recSnapshot {
		ref = next - 1
	}
	if ref >= next {
		return nil, &CorruptStateError{Offset: next - 1, Reason: fmt.Sprintf("snapshot reference %d beyond the log", ref)}
	}
	var r *rebuilt
	for from := ref; from < next; {
		recs, err := sl.Read(from, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("read state log at %d: %w", from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			sr, err := decodeState(rec.Payload)
			if err != nil {
				return nil, &CorruptStateError{Offset: rec.Offset, Reason: err.Error()}
			}
			switch {
			case sr.kind == recSnapshot:
				if name != "" && sr.snap.name != name {
					return nil, &CorruptStateError{Offset: rec.Offset, Reason: fmt.Sprintf("snapshot of group %q, not %q", sr.snap.name, name)}
				}
				r = newRebuilt(&sr.snap, rec.Offset)
			case r == nil:
				return nil, &CorruptStateError{Offset: rec.Offset, Reason: fmt.Sprintf("snapshot reference %d is not a snapshot", ref)}
			default:
				r.apply(sr.ops)
			}
		}
		from = recs[len(recs)-1].Offset + 1
	}
	r.finish(streamEnd)
	return r, nil
}

func readState(sl commitlog.Log, off uint64) (stateRecord, error) {
	recs, err := sl.Read(off, 1, 0)
	if err != nil {
		return stateRecord{}, fmt.Errorf("read state log at %d: %w", off, err)
	}
	if len(recs) == 0 {
		return stateRecord{}, fmt.Errorf("read state log at %d: no record", off)
	}
	sr, err := decodeState(recs[0].Payload)
	if err != nil {
		return sr, &CorruptStateError{Offset: off, Reason: err.Error()}
	}
	return sr, nil
}

func newRebuilt(s *snapshot, at uint64) *rebuilt {
	r := &rebuilt{name: s.name, floor: s.floor, cursor: s.cursor, end: s.cursor, ref: at,
		pending: make(map[uint64]int, len(s.pending)), doneAbove: map[uint64]bool{}, triedAbove: map[uint64]int{}}
	for _, p := range s.pending {
		r.pending[p.off] = p.attempts
	}
	return r
}

// apply replays one ops record. Done (acked or dead) is final; attempt
// counts only grow; so the order of records after the snapshot does not
// matter and repeating one changes nothing.
func (r *rebuilt) apply(ops []op) {
	r.records++
	for _, o := range ops {
		switch {
		case o.off < r.floor:
		case o.off < r.cursor:
			if a, ok := r.pending[o.off]; ok {
				if o.kind == opDelivered {
					r.pending[o.off] = max(a, o.attempts)
				} else {
					delete(r.pending, o.off)
				}
			}
		default:
			r.end = max(r.end, o.off+1)
			if o.kind != opDelivered {
				r.doneAbove[o.off] = true
				delete(r.triedAbove, o.off)
			} else if !r.doneAbove[o.off] {
				r.triedAbove[o.off] = max(r.triedAbove[o.off], o.attempts)
			}
		}
	}
}

// finish folds the offsets seen beyond the snapshot's cursor into
// pending: they were all delivered (deliveries go in offset order), so
// each one not done is pending, with 0 attempts if its delivery did not
// reach the log. Only offsets below streamEnd are made pending: the
// others are beyond the stream's end (restore drops them), and the loop
// and the pending map stay bounded by the stream whatever offsets the log
// names.
func (r *rebuilt) finish(streamEnd uint64) {
	for off := r.cursor; off < min(r.end, streamEnd); off++ {
		if !r.doneAbove[off] {
			r.pending[off] = r.triedAbove[off]
		}
	}
	r.cursor = r.end
	r.doneAbove, r.triedAbove = nil, nil
	r.floor = r.cursor
	for off := range r.pending {
		r.floor = min(r.floor, off)
	}
}
