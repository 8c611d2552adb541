package queue

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/felixmq/felix/commitlog"
)

// ClampedState is what ClampState found in a group's state log.
type ClampedState struct {
	// Group is the group's name as its state holds it ("" for an empty
	// state log).
	Group string
	// Cursor is the first offset the state says was never delivered: every
	// offset below it was delivered (done or pending), none from it on.
	Cursor uint64
	// Clamped: Cursor was beyond the stream's end, and the state log now
	// ends with a snapshot whose cursor is the stream's end.
	Clamped bool
}

// ClampState makes a group's durable state agree with its stream's log,
// whose next offset is streamEnd, without opening the group: when the
// state's cursor lies beyond streamEnd (the stream lost its unsynced tail
// in a crash, or its log was replaced by an older copy), it appends a
// snapshot that drops everything from streamEnd on — acks, dead letters
// and pending deliveries of offsets the stream no longer has — and syncs
// it. The records the stream appends next take those offsets, and the
// group delivers them as new.
//
// Call it when the stream's log is opened, before anything is appended to
// it: NewGroup drops the same state, but only when the group opens (at
// its first consumer, say), and by then new records may have taken the
// offsets the state calls done, and would never be delivered. A state
// within the stream's end is not written to. The caller owns sl (it must
// not be a running group's) and closes it.
//
// Pending offsets below the stream's end are kept as they are, even those
// the stream no longer holds (retention): NewGroup counts them as lost.
// An unreadable state is a *CorruptStateError, as NewGroup would report.
func ClampState(sl commitlog.Log, streamEnd uint64) (ClampedState, error) {
	r, err := replayState("", sl, streamEnd)
	if err != nil || r == nil {
		return ClampedState{}, err
	}
	res := ClampedState{Group: r.name, Cursor: r.cursor}
	if r.cursor <= streamEnd {
		return res, nil
	}
	snap := r.clamped(streamEnd)
	off, err := sl.Append(context.Background(), [][]byte{appendSnapshot(nil, &snap)})
	if err != nil {
		return res, &StateWriteError{Group: r.name, What: "clamped state snapshot", Err: err}
	}
	if s, ok := sl.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return res, &StateWriteError{Group: r.name, What: "clamped state snapshot", Err: fmt.Errorf("sync: %w", err)}
		}
	}
	if t, ok := sl.(headTruncater); ok {
		_ = t.TruncateBefore(off) // a failure only leaves the log longer
	}
	res.Clamped = true
	return res, nil
}

// clamped is r's state with everything from end on dropped: the snapshot
// a group restored from r at a stream ending at end would write. r has
// been finished (see finish).
func (r *rebuilt) clamped(end uint64) snapshot {
	cursor := min(r.cursor, end)
	snap := snapshot{name: r.name, floor: cursor, cursor: cursor}
	for off, attempts := range r.pending {
		if off < cursor {
			snap.pending = append(snap.pending, pendingRec{off: off, attempts: attempts})
			snap.floor = min(snap.floor, off)
		}
	}
	slices.SortFunc(snap.pending, func(a, b pendingRec) int { return cmp.Compare(a.off, b.off) })
	return snap
}
