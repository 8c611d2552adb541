package commitlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sizeRetainedLog is a log of n records (batches of 2) with RetentionBytes.
func sizeRetainedLog(t *testing.T, retain int64, n int) (*DiskLog, string, Options) {
	dir := t.TempDir()
	opts := testOptions()
	opts.RetentionBytes = retain
	l := openT(t, dir, opts)
	appendN(t, l, n, 2)
	return l, dir, opts
}

func TestRetentionByBytes(t *testing.T) {
	l, dir, opts := sizeRetainedLog(t, 3000, 100)
	before := segments(t, dir)
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	after := segments(t, dir)
	if len(after) >= len(before) || after[len(after)-1] != before[len(before)-1] {
		t.Fatalf("segments %v → %v", before, after)
	}
	if l.Oldest() != after[0] || l.Stats().SegmentsDeleted != uint64(len(before)-len(after)) {
		t.Fatalf("Oldest %d, deleted %d; segments %v", l.Oldest(), l.Stats().SegmentsDeleted, after)
	}
	total := int64(0)
	for _, base := range after {
		total += fileSize(t, segPath(dir, base))
	}
	if total > opts.RetentionBytes || total+1024 < opts.RetentionBytes {
		t.Fatalf("%d bytes kept for a bound of %d", total, opts.RetentionBytes)
	}
	var too *TooOldError
	if _, err := l.Read(0, 1, 1); !errors.As(err, &too) || too.Oldest != after[0] {
		t.Fatalf("Read(0) = %v", err)
	}
	checkRecords(t, readAll(t, l, l.Oldest()), l.Oldest())
	l.Close()
	l = openT(t, dir, opts)
	if l.Oldest() != after[0] || l.Next() != 100 {
		t.Fatalf("reopened at [%d, %d)", l.Oldest(), l.Next())
	}
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	opts := testOptions()
	opts.Clock = clock.Now
	opts.RetentionAge = time.Hour
	l := openT(t, dir, opts)
	appendN(t, l, 30, 2) // several segments, written "now"
	old := segments(t, dir)
	clock.Advance(50 * time.Minute)
	appendN(t, l, 30, 2) // more segments, 50 minutes later
	if err := l.EnforceRetention(); err != nil || l.Oldest() != 0 {
		t.Fatalf("nothing is an hour old yet: %v, Oldest %d", err, l.Oldest())
	}
	clock.Advance(11 * time.Minute)
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	// Every segment whose newest record is from the first batch (offsets
	// below 30) goes; the first one holding offset 30 stays.
	rest := segments(t, dir)
	if rest[0] > 30 || (len(rest) > 1 && rest[1] <= 30) || rest[0] < old[len(old)-1] {
		t.Fatalf("after an hour: segments %v (first batch in %v)", rest, old)
	}
	if l.Oldest() != rest[0] {
		t.Fatalf("Oldest %d, want %d", l.Oldest(), rest[0])
	}
	// Ages past everything: the active segment stays.
	clock.Advance(24 * time.Hour)
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, dir); len(segs) != 1 || l.Next() != 60 {
		t.Fatalf("segments %v, Next %d: want only the active one", segs, l.Next())
	}
	checkRecords(t, readAll(t, l, l.Oldest()), l.Oldest())
}

func TestRetentionKeepsInFlightReads(t *testing.T) {
	l, _, _ := sizeRetainedLog(t, 1, 40)
	v, err := l.view(0) // a reader holding segment 0
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	rs, _, err := l.readView(v, 0, nil, 0, 5, 1<<20)
	v.seg.release()
	if err != nil || len(rs) == 0 {
		t.Fatalf("read of a deleted segment in flight: %d records, %v", len(rs), err)
	}
	checkRecords(t, rs, 0)
}

func TestRetentionOff(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	appendN(t, l, 40, 2)
	n := len(segments(t, dir))
	if err := l.EnforceRetention(); err != nil || len(segments(t, dir)) != n {
		t.Fatalf("retention without a bound deleted segments: %v", err)
	}
}

// TruncateBefore deletes exactly the sealed segments whose records all lie
// below the offset; everything from the offset on stays readable, also
// after a reopen, and the active segment is never deleted.
func TestTruncateBefore(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	l := openT(t, dir, opts)
	appendN(t, l, 200, 3)
	before := segments(t, dir)
	if len(before) < 4 {
		t.Fatalf("want several segments, have %v", before)
	}
	cut := before[2] + 1 // inside the third segment
	if err := l.TruncateBefore(cut); err != nil {
		t.Fatal(err)
	}
	after := segments(t, dir)
	if len(after) != len(before)-2 || after[0] != before[2] || l.Oldest() != before[2] {
		t.Fatalf("segments %v → %v, Oldest %d (cut %d)", before, after, l.Oldest(), cut)
	}
	check := func(l Log) {
		t.Helper()
		recs := readAll(t, l, l.Oldest())
		for i, r := range recs {
			if want := l.Oldest() + uint64(i); r.Offset != want || !bytes.Equal(r.Payload, payload(want)) {
				t.Fatalf("record %d: offset %d", i, r.Offset)
			}
		}
	}
	check(l)
	// Beyond the end: every sealed segment goes, the active one stays.
	if err := l.TruncateBefore(l.Next() + 100); err != nil {
		t.Fatal(err)
	}
	if got := segments(t, dir); len(got) != 1 || got[0] != before[len(before)-1] {
		t.Fatalf("after truncating everything: %v", got)
	}
	check(l)
	next := l.Next()
	l.Close()
	l2 := openT(t, dir, opts)
	if l2.Next() != next || l2.Oldest() != before[len(before)-1] {
		t.Fatalf("reopened: oldest %d next %d, want %d %d", l2.Oldest(), l2.Next(), before[len(before)-1], next)
	}
	check(l2)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l2.TruncateBefore(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed log: %v", err)
	}
}

// TruncateBefore syncs the records it keeps before deleting any segment,
// whatever the policy, and does no fsync when nothing is to be deleted.
func TestTruncateBeforeSyncsOnlyWhenDeleting(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.Sync = SyncNever
	l := openT(t, dir, opts)
	defer l.Close()
	appendN(t, l, 200, 3)
	before := l.Stats()
	if before.Synced >= l.Next() {
		t.Fatalf("want unsynced records under SyncNever: synced %d next %d", before.Synced, l.Next())
	}
	if err := l.TruncateBefore(l.Oldest()); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Fsyncs != before.Fsyncs || s.SegmentsDeleted != 0 {
		t.Fatalf("nothing to delete, yet fsyncs %d → %d, deleted %d", before.Fsyncs, s.Fsyncs, s.SegmentsDeleted)
	}
	if err := l.TruncateBefore(l.Next()); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Synced != l.Next() || s.SegmentsDeleted == 0 {
		t.Fatalf("after truncating: synced %d next %d, deleted %d", s.Synced, l.Next(), s.SegmentsDeleted)
	}
}

// A segment file retention cannot remove stops it there: the later
// segments stay, so the directory has no gap, Oldest stays at the
// segment that is still on disk, and the log opens again.
func TestRetentionStopsAtSegmentItCannotRemove(t *testing.T) {
	l, dir, opts := sizeRetainedLog(t, 1, 100) // every sealed segment is over the bound
	before := segments(t, dir)
	if len(before) < 4 {
		t.Fatalf("only %d segments", len(before))
	}
	// Make the second segment's path impossible to remove (even for root):
	// a non-empty directory in its place. The log keeps its open file.
	stuck := segPath(dir, before[1])
	moved := filepath.Join(t.TempDir(), "seg")
	if err := os.Rename(stuck, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stuck, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(); err == nil {
		t.Fatal("retention reported no error")
	}
	if l.Oldest() != before[1] || l.Stats().SegmentsDeleted != 1 {
		t.Fatalf("Oldest %d (want %d), deleted %d (want 1)", l.Oldest(), before[1], l.Stats().SegmentsDeleted)
	}
	// (segments lists segment files: the stuck directory is not one.)
	if after := segments(t, dir); len(after) != len(before)-2 || after[0] != before[2] {
		t.Fatalf("segments %v → %v: the later ones must stay", before, after)
	}
	checkRecords(t, readAll(t, l, l.Oldest()), l.Oldest())
	// Once the path can be removed, retention goes on from there.
	if err := os.RemoveAll(stuck); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, stuck); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	last := before[len(before)-1]
	if l.Oldest() != last {
		t.Fatalf("Oldest %d, want the active segment's %d", l.Oldest(), last)
	}
	l.Close()
	l = openT(t, dir, opts)
	if l.Oldest() != last || l.Next() != 100 {
		t.Fatalf("reopened at [%d, %d)", l.Oldest(), l.Next())
	}
}
