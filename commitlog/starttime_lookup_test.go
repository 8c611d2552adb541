package commitlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// timeBase is the time of "ms 0" in these tests.
var timeBase = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func at(ms int64) time.Time { return timeBase.Add(time.Duration(ms) * time.Millisecond) }

// stamped appends one batch of n records of size bytes each, stamped at
// ms by the clock; it returns the first offset.
func stamped(t *testing.T, l Log, clock *fakeClock, ms int64, n, size int) uint64 {
	t.Helper()
	clock.us.Store(at(ms).UnixMicro())
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = bytes.Repeat([]byte{byte('a' + i%26)}, size)
	}
	first, err := l.Append(context.Background(), ps)
	if err != nil {
		t.Fatalf("Append at ms %d: %v", ms, err)
	}
	return first
}

func wantOffsetForTime(t *testing.T, l Log, when time.Time, want uint64) {
	t.Helper()
	got, err := l.OffsetForTime(when)
	if err != nil {
		t.Fatalf("OffsetForTime(%v): %v", when, err)
	}
	if got != want {
		t.Fatalf("OffsetForTime(%v) = %d, want %d", when.Sub(timeBase), got, want)
	}
}

// diskForTime is a log of small segments: records of 200 payload bytes
// take 224, so four fill a 1024-byte segment; an index entry every 128
// bytes.
func diskForTime(t *testing.T, dir string) (*DiskLog, *fakeClock, Options) {
	t.Helper()
	clock := newFakeClock()
	opts := testOptions()
	opts.Clock = clock.Now
	return openT(t, dir, opts), clock, opts
}

// One record per millisecond 0..N-1 over many segments: every exact time,
// every time between two records, before the first and after the last.
func TestOffsetForTimeAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	l, clock, opts := diskForTime(t, dir)
	const n = 40
	for i := range int64(n) {
		stamped(t, l, clock, i*10, 1, 200)
	}
	if s := l.Stats().Segments; s < 8 {
		t.Fatalf("%d segments, want many", s)
	}
	check := func(l *DiskLog) {
		t.Helper()
		for i := range uint64(n) {
			ms := int64(i) * 10
			wantOffsetForTime(t, l, at(ms), i)                         // exactly its time
			wantOffsetForTime(t, l, at(ms-5), i)                       // between the previous one and it
			wantOffsetForTime(t, l, at(ms).Add(-1), i)                 // a nanosecond before: its microsecond
			wantOffsetForTime(t, l, at(ms).Add(time.Microsecond), i+1) // just after
		}
		wantOffsetForTime(t, l, time.Time{}, 0)
		wantOffsetForTime(t, l, at(-24*3600*1000), 0)
		wantOffsetForTime(t, l, at(n*10), n)
		wantOffsetForTime(t, l, at(1e12), n)
		wantOffsetForTime(t, l, time.Unix(1<<62, 0), n) // beyond unix microseconds
		wantOffsetForTime(t, l, time.Unix(-1<<62, 0), 0)
	}
	check(l)
	// Reopened: last timestamps from recovery, sealed indexes from files.
	l.Close()
	check(openT(t, dir, opts))
}

// The lookup reads the segment it needs, not the log: a damaged record in
// the first segment does not stop a lookup that lands later, and is
// reported by one that lands on it.
func TestOffsetForTimeReadsOneSegment(t *testing.T) {
	dir := t.TempDir()
	l, clock, _ := diskForTime(t, dir)
	for i := range int64(20) {
		stamped(t, l, clock, i*10, 1, 200)
	}
	f, err := os.OpenFile(segPath(dir, 0), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The payload of record 0 (after the segment and record headers).
	if _, err := f.WriteAt([]byte("garbage"), segmentHeaderSize+recordHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantOffsetForTime(t, l, at(150), 15)
	wantOffsetForTime(t, l, at(1000), 20)
	if _, err := l.OffsetForTime(at(0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lookup on the damaged record: %v, want ErrCorrupt", err)
	}
}

// A batch shares one timestamp: a time equal to it starts at the batch's
// first record.
func TestOffsetForTimeEqualTimestamps(t *testing.T) {
	l, clock, _ := diskForTime(t, t.TempDir())
	a := stamped(t, l, clock, 0, 3, 100)
	b := stamped(t, l, clock, 10, 3, 100)
	c := stamped(t, l, clock, 10, 3, 100) // same millisecond as b
	d := stamped(t, l, clock, 20, 3, 100)
	wantOffsetForTime(t, l, at(0), a)
	wantOffsetForTime(t, l, at(5), b)
	wantOffsetForTime(t, l, at(10), b)
	if c != b+3 {
		t.Fatalf("c = %d", c)
	}
	wantOffsetForTime(t, l, at(11), d)
	wantOffsetForTime(t, l, at(20), d)
	wantOffsetForTime(t, l, at(21), d+3)
}

func TestOffsetForTimeEmptyAndClosed(t *testing.T) {
	l, _, _ := diskForTime(t, t.TempDir())
	wantOffsetForTime(t, l, time.Time{}, 0)
	wantOffsetForTime(t, l, at(0), 0)
	l.Close()
	if _, err := l.OffsetForTime(at(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	m := NewMemory(4, 0)
	wantOffsetForTime(t, m, at(0), 0)
	m.Close()
	if _, err := m.OffsetForTime(at(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed memory: %v", err)
	}
}

// A time older than the oldest retained record gives the oldest one, not
// an error: retention has dropped what came before.
func TestOffsetForTimeRetainedHead(t *testing.T) {
	l, clock, _ := diskForTime(t, t.TempDir())
	for i := range int64(20) {
		stamped(t, l, clock, i*10, 1, 200)
	}
	if err := l.TruncateBefore(9); err != nil {
		t.Fatal(err)
	}
	oldest := l.Oldest()
	if oldest == 0 || oldest > 9 {
		t.Fatalf("oldest %d after truncation", oldest)
	}
	wantOffsetForTime(t, l, at(0), oldest)
	wantOffsetForTime(t, l, at(-1000), oldest)
	wantOffsetForTime(t, l, at(int64(oldest)*10), oldest)
	wantOffsetForTime(t, l, at(int64(oldest)*10+1), oldest+1)
	wantOffsetForTime(t, l, at(190), 19)

	// Retention by age drops whole segments the same way.
	dir := t.TempDir()
	clock2 := newFakeClock()
	opts := testOptions()
	opts.Clock, opts.RetentionAge = clock2.Now, time.Hour
	l2 := openT(t, dir, opts)
	for i := range int64(12) {
		stamped(t, l2, clock2, i*10, 1, 200)
	}
	clock2.us.Store(at(110).Add(time.Hour + time.Millisecond).UnixMicro()) // the first segments are over an hour old
	stamped(t, l2, clock2, 110+3600_001, 1, 200)
	if err := l2.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l2.Oldest() == 0 {
		t.Fatal("retention dropped nothing")
	}
	wantOffsetForTime(t, l2, at(0), l2.Oldest())
	wantOffsetForTime(t, l2, at(111), 12)
}

// A clock that stepped back within a segment: the scan from the segment's
// start stops at the first record at or after the time, earlier than the
// records stamped after the step; every record after it is delivered.
func TestOffsetForTimeClockSteppedBack(t *testing.T) {
	l, clock, _ := diskForTime(t, t.TempDir())
	for _, ms := range []int64{10, 20, 30, 40} { // one segment: four 200-byte records
		stamped(t, l, clock, ms, 1, 200)
	}
	for _, ms := range []int64{25, 26, 50, 60} { // stepped back, then on; the next segment
		stamped(t, l, clock, ms, 1, 200)
	}
	wantOffsetForTime(t, l, at(25), 2) // 30 at offset 2 comes first: 30, 40, 25, 26, 50, 60 follow
	wantOffsetForTime(t, l, at(45), 6) // segment 1's last (40) is older: segment 2, record 50
	wantOffsetForTime(t, l, at(5), 0)
	wantOffsetForTime(t, l, at(61), 8)

	// Within one segment (small records: the index has an entry per
	// record or two): 10 20 30 40 25 26 50 60.
	m, mclock, _ := diskForTime(t, t.TempDir())
	for _, ms := range []int64{10, 20, 30, 40, 25, 26, 50, 60} {
		stamped(t, m, mclock, ms, 1, 40)
	}
	if m.Stats().Segments != 1 {
		t.Fatalf("%d segments", m.Stats().Segments)
	}
	for _, c := range []struct {
		ms   int64
		want uint64
	}{
		{5, 0}, {25, 2}, {45, 6}, {60, 7}, {61, 8},
		// Index entries at offsets 0, 2, 4, 6 stamped 10, 30, 25, 50: the
		// search for 26 lands between entry 4 (25) and 6 (50) and the
		// scan from 4 finds 26 at offset 5, past 30 and 40, which were
		// stamped by the clock before it stepped back.
		{26, 5}, {27, 6},
	} {
		got, err := m.OffsetForTime(at(c.ms))
		if err != nil {
			t.Fatal(err)
		}
		// The binary search over index entries may land on any boundary
		// where the stamps cross the time; whatever it finds is a record
		// at or after the time, and nothing after it is skipped.
		recs := readAll(t, m, 0)
		if got < m.Next() && recs[got].Timestamp < at(c.ms).UnixMicro() {
			t.Fatalf("ms %d: offset %d is stamped before the time", c.ms, got)
		}
		if got != c.want {
			t.Fatalf("ms %d: offset %d, want %d", c.ms, got, c.want)
		}
	}
}

// An index entry that does not lead to its record makes the lookup scan
// the segment from its start: same answer.
func TestOffsetForTimeBadIndexEntry(t *testing.T) {
	l, clock, _ := diskForTime(t, t.TempDir())
	for i := range int64(4) {
		stamped(t, l, clock, i*10, 1, 200)
	}
	l.segMu.Lock()
	seg := l.segs[0]
	if len(seg.index.entries) < 3 {
		l.segMu.Unlock()
		t.Fatalf("%d index entries", len(seg.index.entries))
	}
	seg.index.entries[1].Pos += 3 // points inside a record
	l.segMu.Unlock()
	for i := range uint64(4) {
		wantOffsetForTime(t, l, at(int64(i)*10), i)
	}
}

func TestMemoryOffsetForTime(t *testing.T) {
	m := NewMemory(6, 0)
	clock := newFakeClock()
	m.now = clock.Now
	wantOffsetForTime(t, m, at(0), 0)
	for i := range int64(10) { // ms 0, 10, ..., 90; the ring keeps 4..9
		stamped(t, m, clock, i*10, 1, 1)
	}
	if m.Oldest() != 4 {
		t.Fatalf("oldest %d", m.Oldest())
	}
	wantOffsetForTime(t, m, at(0), 4)
	wantOffsetForTime(t, m, at(40), 4)
	wantOffsetForTime(t, m, at(41), 5)
	wantOffsetForTime(t, m, at(90), 9)
	wantOffsetForTime(t, m, at(91), 10)
	wantOffsetForTime(t, m, time.Unix(1<<62, 0), 10)
	// Equal stamps: the batch's first record.
	b := stamped(t, m, clock, 100, 3, 1)
	wantOffsetForTime(t, m, at(95), b)
	wantOffsetForTime(t, m, at(100), b)
	// AppendAt keeps the records' own stamps.
	if err := m.AppendAt(context.Background(), []Record{{Offset: m.Next(), Timestamp: at(200).UnixMicro()}}); err != nil {
		t.Fatal(err)
	}
	wantOffsetForTime(t, m, at(150), b+3)
}
