package commitlog

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Bounds of one read of the scan that ends a time lookup (OffsetForTime).
// The scan starts at most one index spacing before the record it finds
// when timestamps increase, so one read usually does.
const (
	timeScanRecords = 256
	timeScanBytes   = 256 << 10
)

// unixMicro is t in unix microseconds (the unit of record timestamps),
// rounded down, and clamped to the int64 range where UnixMicro is
// undefined. Rounded down, so that a record stamped in the microsecond of
// t is never skipped.
func unixMicro(t time.Time) int64 {
	const maxSec = math.MaxInt64/1_000_000 - 1
	switch s := t.Unix(); {
	case s > maxSec:
		return math.MaxInt64
	case s < -maxSec:
		return math.MinInt64
	}
	return t.UnixMicro()
}

// OffsetForTime finds the first record at or after t; see Log.OffsetForTime.
//
// It reads no more than it must: a binary search over the segments by
// the timestamp of their last record (kept in memory) picks the first
// segment whose last record is at or after t; a binary search over that
// segment's sparse index (reading one record header per step) picks the
// entry to start from; a scan from there returns the first record at or
// after t. With increasing timestamps that is exactly the first record
// at or after t. A clock stepped back can make both searches land early,
// never past a record that follows the one they find. An index entry that
// does not match its segment makes the scan start at the segment's first
// record instead (slower, same answer).
func (l *DiskLog) OffsetForTime(t time.Time) (uint64, error) {
	ts := unixMicro(t)
	v, next, err := l.segmentForTime(ts)
	if err != nil || v.seg == nil {
		return next, err
	}
	defer v.seg.release()
	for cur := l.seekTime(v, ts); cur < v.next; {
		recs, _, err := l.readView(v, cur, nil, 0, timeScanRecords, timeScanBytes)
		if err != nil {
			return 0, fmt.Errorf("commitlog: offset for time %s in %s: %w", t.Format(time.RFC3339Nano), v.seg.path, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Timestamp >= ts {
				return r.Offset, nil
			}
		}
		cur = recs[len(recs)-1].Offset + 1
	}
	// Only a segment changed under us could get here (its last record is
	// at or after t): go on after it.
	return v.next, nil
}

// segmentForTime returns a view of the first segment whose last record is
// at or after ts (binary search by the segments' last timestamps), with a
// reference the caller releases; or no segment (nil seg) and the log's
// next offset when every record is older than ts or the log is empty.
func (l *DiskLog) segmentForTime(ts int64) (segView, uint64, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	if l.rclosed {
		return segView{}, 0, ErrClosed
	}
	segs := l.segs
	if last := segs[len(segs)-1]; last.next == last.base {
		segs = segs[:len(segs)-1] // the empty active segment: only sealed ones are searched
	}
	i := sort.Search(len(segs), func(i int) bool { return segs[i].lastTS >= ts })
	if i == len(segs) {
		return segView{}, l.next.Load(), nil
	}
	s := segs[i]
	s.acquire()
	return segView{seg: s, end: s.size, next: s.next, entries: s.index.entries}, 0, nil
}

// seekTime returns the offset the scan for ts starts from in v: that of
// the index entry before the first entry whose record is at or after ts
// (binary search, one record header read per step), or the segment's
// first record.
func (l *DiskLog) seekTime(v segView, ts int64) uint64 {
	var hdr [recordHeaderSize]byte
	var bad error
	k := sort.Search(len(v.entries), func(j int) bool {
		e := v.entries[j]
		if bad != nil {
			return true
		}
		if _, err := v.seg.f.ReadAt(hdr[:], e.Pos); err != nil {
			bad = noEOF(err)
			return true
		}
		h := parseRecordHeader(hdr[:])
		if h.Offset != e.Offset {
			bad = fmt.Errorf("record offset %d at the entry of offset %d", h.Offset, e.Offset)
			return true
		}
		return h.Timestamp >= ts
	})
	if bad != nil {
		l.log.Warn("commitlog: index entry does not match its segment; the time lookup scans from the segment's start",
			"file", v.seg.path, "err", bad)
		return v.seg.base
	}
	if k == 0 {
		return v.seg.base
	}
	return v.entries[k-1].Offset
}

// OffsetForTime finds the first record at or after t; see Log.OffsetForTime.
// A binary search over the ring by timestamp.
func (m *Memory) OffsetForTime(t time.Time) (uint64, error) {
	ts := unixMicro(t)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, ErrClosed
	}
	i := sort.Search(m.n, func(i int) bool { return m.buf[(m.head+i)%len(m.buf)].Timestamp >= ts })
	if i == m.n {
		return m.next, nil
	}
	return m.start + uint64(i), nil
}
