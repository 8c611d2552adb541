package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/felixmq/felix/commitlog"
)

// stateWriter appends a group's state records to its StateLog.
//
// Every record is appended under the group's lock, in the same critical
// section that decided its content: the log's order is the order in which
// the changes took effect in memory, so a snapshot follows every record
// whose content it contains and precedes every one it does not. Only the
// append (a write to the OS) happens under the lock; the wait for its
// durability (the fsync under commitlog.SyncAlways, shared by concurrent
// writers) happens after the lock is released (awaitState). The one fsync
// under the lock is the log's own when a write rolls its segment (once per
// commitlog.Options.SegmentBytes of state records): the full segment is
// synced before the next one starts.
type stateWriter struct {
	log   commitlog.Log
	split splitAppender // log as one that appends without waiting; nil if it cannot
	every int64

	// under the group's lock
	ref   uint64 // offset of the latest snapshot
	since int64  // records appended after it
	end   uint64 // the offset after the last record appended
	// gap: the group skipped records the stream no longer holds (refill)
	// since the latest snapshot was captured. Until a snapshot records the
	// cursor past them, the group writes snapshots, not ops: a replay takes
	// every offset between a snapshot's cursor and an op's as delivered,
	// and would make each skipped record pending again (one entry per
	// record: a purge of millions of records would be read back one by
	// one at a restart, and counted as lost once more).
	gap bool
}

// splitAppender is a log whose append and wait for durability are two
// calls (commitlog.DiskLog): the group appends under its lock and waits
// outside it. A StateLog without them (commitlog.Memory, which never
// waits) is appended to with Append under the lock.
type splitAppender interface {
	AppendNoWait(payloads [][]byte) (first, end uint64, err error)
	WaitDurable(ctx context.Context, end uint64) error
}

// stateWrite is what a state write under the group's lock leaves for
// awaitState: the log offset to wait for, or the append's error.
type stateWrite struct {
	end    uint64 // wait for the records below; 0: nothing appended
	err    error  // the append failed (counted): a *StateWriteError
	snapAt uint64 // a snapshot was appended at snapAt-1 (0: none)
}

// appendLocked appends one state record; g.mu is held.
func (s *stateWriter) appendLocked(payload []byte) (off uint64, err error) {
	if s.split != nil {
		_, end, err := s.split.AppendNoWait([][]byte{payload})
		if err != nil {
			return 0, err
		}
		s.end = end
		return end - 1, nil
	}
	if off, err = s.log.Append(context.Background(), [][]byte{payload}); err == nil {
		s.end = off + 1
	}
	return off, err
}

// writeStateLocked appends ops, with the attempt counts not yet in the
// state log, as one ops record (nothing without a StateLog or without
// ops); or, with snap (a count was lowered, a write failed) or after
// skipped records (gap), a snapshot of the whole state, which holds what
// ops hold. After SnapshotEvery records it appends a snapshot too. A
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
		w := g.snapshotLocked()
		if w.err != nil {
			g.resnap = true
		}
		return w
	}
	ops = g.takeDirtyLocked(ops)
	if len(ops) == 0 {
		return stateWrite{}
	}
	if _, err := s.appendLocked(appendOps(nil, s.ref, ops)); err != nil {
		g.stats.StateErrors++
		g.resnap = true
		return stateWrite{err: &StateWriteError{Group: g.name, What: "state", Err: err}}
	}
	if s.since++; s.since >= s.every {
		// The ops are written: a failed snapshot (counted, and tried
		// again by the next record) is not this write's failure.
		if w := g.snapshotLocked(); w.err == nil {
			return w
		}
	}
	return stateWrite{end: s.end}
}

// snapshotLocked appends the group's whole state; g.mu is held. The
// attempt counts it holds are no longer dirty, and it records the cursor
// past any records skipped.
func (g *Group) snapshotLocked() stateWrite {
	s := g.state
	snap := g.captureLocked()
	off, err := s.appendLocked(appendSnapshot(nil, &snap))
	if err != nil {
		g.stats.StateErrors++
		return stateWrite{err: &StateWriteError{Group: g.name, What: "state snapshot", Err: err}}
	}
	clear(g.dirty)
	s.gap = false
	s.ref, s.since = off, 0
	g.truncating++ // awaitState truncates, and Close waits for it
	return stateWrite{end: s.end, snapAt: off + 1}
}

// awaitState waits, without the group's lock, until the state record w
// appended is durable per the state log's sync policy, and then drops the
// state-log segments before the snapshot it wrote, if any. A failed wait
// (ctx ended, a failed fsync) counts as a failed write: the next Tick
// writes a snapshot. Every stateWrite a write under the lock returns
// goes through awaitState (a snapshot's truncation is counted in
// Group.truncating until it is done).
func (g *Group) awaitState(ctx context.Context, w stateWrite) error {
	if w.err != nil {
		return w.err
	}
	if w.end == 0 {
		return nil
	}
	var err error
	if s := g.state; s.split != nil {
		err = s.split.WaitDurable(ctx, w.end)
	}
	truncFailed := false
	if err == nil && w.snapAt != 0 {
		truncFailed = g.truncateState(w.snapAt - 1)
	}
	if err != nil || w.snapAt != 0 {
		g.mu.Lock()
		if err != nil {
			// Counted; the next Tick (or Close) writes a snapshot, which
			// carries the record's change.
			g.stats.StateErrors++
			g.resnap = true
		}
		if truncFailed {
			g.stats.StateErrors++ // nothing lost: no snapshot needed
		}
		if w.snapAt != 0 {
			if g.truncating--; g.truncating == 0 {
				g.settled.Broadcast() // Close waits for no truncation
			}
		}
		g.mu.Unlock()
	}
	if err != nil {
		what := "state"
		if w.snapAt != 0 {
			what = "state snapshot"
		}
		return &StateWriteError{Group: g.name, What: what, Err: err}
	}
	return nil
}

// snapshot writes a snapshot of the group's state and waits for it.
func (g *Group) snapshot(ctx context.Context) error {
	g.mu.Lock()
	w := g.snapshotLocked()
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
