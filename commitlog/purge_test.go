package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// dirFiles lists the names of the files in dir, sorted, without LOCK and
// the spare segment (which come and go with the log, not with a purge).
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); n != "LOCK" && n != spareName {
			names = append(names, n)
		}
	}
	return names
}

// checkPurged checks that l holds no record and starts at first: Oldest
// and Next are first, a read below gets a *TooOldError naming first, a
// time lookup answers first.
func checkPurged(t *testing.T, l Log, first uint64) {
	t.Helper()
	if l.Oldest() != first || l.Next() != first {
		t.Fatalf("log [%d, %d), want [%d, %d)", l.Oldest(), l.Next(), first, first)
	}
	for _, from := range []uint64{0, first / 2, first - 1} {
		if first == 0 {
			break
		}
		var too *TooOldError
		if _, err := l.Read(from, 10, 1<<20); !errors.As(err, &too) || too.Oldest != first || too.Requested != from {
			t.Fatalf("Read(%d) below the purge point %d: %v", from, first, err)
		}
	}
	for _, at := range []time.Time{{}, time.Unix(0, 0), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)} {
		if off, err := l.OffsetForTime(at); err != nil || off != first {
			t.Fatalf("OffsetForTime(%v) on a purged log = %d, %v; want %d", at, off, err, first)
		}
	}
}

// A purge of a log with several sealed segments and records in its active
// one removes every record and every old file, keeps Next, and appends go
// on from it; a reopen (and Verify, and Dump) sees the same.
func TestPurgeSealedAndActive(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	l := openT(t, dir, opts)
	appendN(t, l, 200, 3)
	if activeSize(l) == segmentHeaderSize {
		appendN(t, l, 1, 1) // records in the active segment too
	}
	before := segments(t, dir)
	if len(before) < 4 {
		t.Fatalf("want several segments, have %v", before)
	}
	next := l.Next()
	first, _, err := l.Purge()
	if err != nil || first != next {
		t.Fatalf("Purge = %d, %v; want %d", first, err, next)
	}
	checkPurged(t, l, next)
	if got, want := dirFiles(t, dir), []string{segmentName(next)}; !slices.Equal(got, want) {
		t.Fatalf("files after the purge %v, want %v", got, want)
	}
	if s := l.Stats(); s.SegmentsDeleted != uint64(len(before)) || s.Segments != 1 || s.Oldest != next || s.Next != next || s.Synced < next {
		t.Fatalf("stats after the purge: %+v (%d segments before)", s, len(before))
	}

	// Closed and opened again: the purge stays, and the directory, whose
	// only segment is empty with a base above 0, verifies and dumps.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.Oldest != next || rep.Next != next || rep.Records != 0 || len(rep.Segments) != 1 || len(rep.Notes) != 0 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	var dump bytes.Buffer
	if err := Dump(dir, 0, 0, &dump, DumpText); err != nil || dump.Len() != 0 {
		t.Fatalf("Dump of a purged log: %q, %v", dump.String(), err)
	}
	l = openT(t, dir, opts)
	checkPurged(t, l, next)

	// Appends go on at the old Next, across rolls, and stay after a reopen.
	appendN(t, l, 60, 2)
	checkRecords(t, readAll(t, l, next), next)
	if l.Oldest() != next {
		t.Fatalf("Oldest %d after appending, want %d", l.Oldest(), next)
	}
	l.Close()
	l = openT(t, dir, opts)
	if l.Oldest() != next || l.Next() != next+60 {
		t.Fatalf("reopened at [%d, %d), want [%d, %d)", l.Oldest(), l.Next(), next, next+60)
	}
	checkRecords(t, readAll(t, l, next), next)
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

// The roll of a purge is an ordinary roll: it makes the segment prepared
// ahead the new one (same file), and the next roll gets a spare again.
func TestPurgeRollUsesSpare(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	l := openT(t, dir, opts)
	rollAppend(t, l, 5) // one sealed segment, one record in the active one
	for activeSize(l) < opts.SegmentBytes/2 {
		rollAppend(t, l, 1)
	}
	eventually(t, "a spare segment prepared", func() bool { return spareReady(l) })
	spare, err := os.Stat(filepath.Join(dir, spareName))
	if err != nil {
		t.Fatal(err)
	}
	next := l.Next()
	if first, _, err := l.Purge(); err != nil || first != next {
		t.Fatalf("Purge = %d, %v; want %d", first, err, next)
	}
	seg, err := os.Stat(segPath(dir, next))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(spare, seg) || spareExists(t, dir) {
		t.Fatalf("the purge's roll did not use the spare (same file %v, spare name still there %v)", os.SameFile(spare, seg), spareExists(t, dir))
	}
	checkPurged(t, l, next)
	for activeSize(l) < opts.SegmentBytes/2 {
		rollAppend(t, l, 1)
	}
	eventually(t, "a spare segment prepared after the purge", func() bool { return spareReady(l) })
	rollAppend(t, l, 3) // the last one rolls
	checkRollBodies(t, l, next+6)
	if l.Oldest() != next || activeBase(l) == next {
		t.Fatalf("log [%d, %d), active segment at %d: want a roll after the purge point %d", l.Oldest(), l.Next(), activeBase(l), next)
	}
}

// A purge of an empty log, or of a log whose active segment is empty,
// rolls nothing and creates no file; a purge with nothing to delete does
// no I/O at all.
func TestPurgeEmptyActiveSegment(t *testing.T) {
	t.Run("empty log", func(t *testing.T) {
		dir := t.TempDir()
		l := openT(t, dir, testOptions())
		files, fsyncs := dirFiles(t, dir), l.Stats().Fsyncs
		if first, _, err := l.Purge(); err != nil || first != 0 {
			t.Fatalf("Purge = %d, %v", first, err)
		}
		checkPurged(t, l, 0)
		if got := dirFiles(t, dir); !slices.Equal(got, files) {
			t.Fatalf("files %v → %v", files, got)
		}
		if s := l.Stats(); s.Fsyncs != fsyncs || s.SegmentsDeleted != 0 {
			t.Fatalf("purge of an empty log: fsyncs %d → %d, deleted %d", fsyncs, s.Fsyncs, s.SegmentsDeleted)
		}
		appendN(t, l, 3, 1)
		checkRecords(t, readAll(t, l, 0), 0)
	})
	t.Run("sealed segments and an empty active one", func(t *testing.T) {
		// A log whose last segment is empty (a crash just after a roll):
		// the purge deletes the sealed ones, and keeps that segment.
		dir := t.TempDir()
		opts := testOptions()
		l := openT(t, dir, opts)
		appendN(t, l, 100, 3)
		next := l.Next()
		l.Close()
		if err := os.WriteFile(segPath(dir, next), segmentHeaderBytes(next, 1), 0o644); err != nil {
			t.Fatal(err)
		}
		l = openT(t, dir, opts)
		if activeBase(l) != next || l.Oldest() != 0 {
			t.Fatalf("reopened: active segment at %d, oldest %d; want %d, 0", activeBase(l), l.Oldest(), next)
		}
		sealed := len(segments(t, dir)) - 1
		empty, err := os.Stat(segPath(dir, next))
		if err != nil {
			t.Fatal(err)
		}
		if first, _, err := l.Purge(); err != nil || first != next {
			t.Fatalf("Purge = %d, %v; want %d", first, err, next)
		}
		checkPurged(t, l, next)
		if got, want := dirFiles(t, dir), []string{segmentName(next)}; !slices.Equal(got, want) {
			t.Fatalf("files after the purge %v, want %v", got, want)
		}
		if seg, err := os.Stat(segPath(dir, next)); err != nil || !os.SameFile(seg, empty) {
			t.Fatalf("the empty active segment was replaced (%v)", err)
		}
		if s := l.Stats(); s.SegmentsDeleted != uint64(sealed) {
			t.Fatalf("deleted %d segments, want %d", s.SegmentsDeleted, sealed)
		}
		// Purged again at once: nothing to do, no I/O.
		fsyncs := l.Stats().Fsyncs
		if first, _, err := l.Purge(); err != nil || first != next || l.Stats().Fsyncs != fsyncs {
			t.Fatalf("second Purge = %d, %v; fsyncs %d → %d", first, err, fsyncs, l.Stats().Fsyncs)
		}
		appendN(t, l, 10, 2)
		checkRecords(t, readAll(t, l, next), next)
	})
}

// Purges while four goroutines append (two with Append, two with group
// writes): every append lands wholly on one side of a purge point, every
// record appended after the last purge point is there, offsets stay
// contiguous and are never reused, and an append that starts after a
// Purge returned is never removed by it.
func TestPurgeConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	l := openT(t, dir, opts)
	ctx := context.Background()
	type ack struct {
		first, n uint64
		body     string
		after    uint64 // the last purge point returned before the append started
	}
	const writers, perWriter = 4, 150
	var (
		mu       sync.Mutex
		acks     []ack
		lastDone uint64 // the last purge point returned
		wg       sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for s := range perWriter {
				n := 1 + (w+s)%3
				ps := make([][]byte, n)
				body := fmt.Sprintf("w%d s%d ", w, s)
				for i := range ps {
					ps[i] = []byte(body + fmt.Sprint(i))
				}
				mu.Lock()
				after := lastDone
				mu.Unlock()
				var first uint64
				var err error
				if w%2 == 0 {
					first, err = l.Append(ctx, ps)
				} else {
					first, _, err = l.AppendNoWait(ps)
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{first, uint64(n), body, after})
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var points []uint64
	for len(points) < 8 {
		select {
		case <-done:
		default:
			if l.Next() < 100*uint64(len(points)) {
				time.Sleep(100 * time.Microsecond)
				continue
			}
		}
		first, _, err := l.Purge()
		if err != nil {
			t.Fatal(err)
		}
		if len(points) > 0 && first < points[len(points)-1] {
			t.Fatalf("purge points go back: %v then %d", points, first)
		}
		points = append(points, first)
		mu.Lock()
		lastDone = first
		mu.Unlock()
	}
	<-done
	t.Logf("purge points %v, next %d", points, l.Next())
	last := points[len(points)-1]
	if l.Oldest() != last {
		t.Fatalf("Oldest %d, want the last purge point %d (points %v)", l.Oldest(), last, points)
	}
	// Every offset below Next was given to exactly one record of one append.
	owner := make([]int, l.Next())
	total := uint64(0)
	for i, a := range acks {
		total += a.n
		if a.first < a.after {
			t.Fatalf("append %q started after the purge to %d returned, got offset %d", a.body, a.after, a.first)
		}
		for k := range a.n {
			off := a.first + k
			if off >= uint64(len(owner)) || owner[off] != 0 {
				t.Fatalf("offset %d given twice or past Next %d", off, l.Next())
			}
			owner[off] = i + 1
		}
	}
	if total != l.Next() || total != writers*perWriter*2 {
		t.Fatalf("%d records appended, Next %d", total, l.Next())
	}
	check := func(l *DiskLog) {
		t.Helper()
		rs := readAll(t, l, last)
		if uint64(len(rs)) != l.Next()-last {
			t.Fatalf("%d records from the last purge point %d, want %d", len(rs), last, l.Next()-last)
		}
		for _, r := range rs {
			a := acks[owner[r.Offset]-1]
			if want := a.body + fmt.Sprint(r.Offset-a.first); string(r.Payload) != want {
				t.Fatalf("offset %d holds %q, want %q", r.Offset, r.Payload, want)
			}
		}
		var too *TooOldError
		if _, err := l.Read(last-1, 1, 1); last > 0 && !errors.As(err, &too) {
			t.Fatalf("Read below the last purge point: %v", err)
		}
	}
	check(l)
	next := l.Next()
	l.Close()
	l = openT(t, dir, opts)
	if l.Oldest() != last || l.Next() != next {
		t.Fatalf("reopened at [%d, %d), want [%d, %d)", l.Oldest(), l.Next(), last, next)
	}
	check(l)
}

// Readers keep what they read before a purge, and a reader that found a
// segment before the purge deleted it reads it to the end.
func TestPurgeKeepsInFlightReads(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	appendN(t, l, 60, 2)
	read, err := l.Read(0, 10, 1<<20)
	if err != nil || len(read) != 10 {
		t.Fatalf("Read: %d records, %v", len(read), err)
	}
	v, err := l.view(0) // a reader holding the first segment
	if err != nil {
		t.Fatal(err)
	}
	defer v.seg.release()
	if _, _, err := l.Purge(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.seg.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment %s still there after the purge: %v", v.seg.path, err)
	}
	checkPurged(t, l, 60)
	checkRecords(t, read, 0)
	rs, _, err := l.readView(v, 0, nil, 0, 1000, 1<<20)
	if err != nil || len(rs) == 0 || uint64(len(rs)) != v.next-v.seg.base {
		t.Fatalf("read of a purged segment in flight: %d records (segment holds %d), %v", len(rs), v.next-v.seg.base, err)
	}
	checkRecords(t, rs, 0)
}

// Under every sync policy everything below the purge point is fsynced
// before a file is deleted (the roll seals the segment), the purge
// survives a reopen, and appends after it keep their policy's promise.
func TestPurgeSyncPolicies(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.Sync = p
			opts.SyncInterval = time.Hour // the background fsync never comes
			l := openT(t, dir, opts)
			appendN(t, l, 100, 3)
			if p != SyncAlways && l.Stats().Synced >= l.Next() {
				t.Fatalf("want unsynced records: synced %d, next %d", l.Stats().Synced, l.Next())
			}
			next := l.Next()
			first, _, err := l.Purge()
			if err != nil || first != next {
				t.Fatalf("Purge = %d, %v; want %d", first, err, next)
			}
			checkPurged(t, l, next)
			if s := l.Stats(); s.Synced < next {
				t.Fatalf("synced %d after the purge to %d", s.Synced, next)
			}
			appendN(t, l, 30, 2)
			if s := l.Stats(); p == SyncAlways && s.Synced != l.Next() {
				t.Fatalf("SyncAlways: synced %d, next %d", s.Synced, l.Next())
			}
			l.Close()
			l = openT(t, dir, opts)
			if l.Oldest() != next || l.Next() != next+30 {
				t.Fatalf("reopened at [%d, %d), want [%d, %d)", l.Oldest(), l.Next(), next, next+30)
			}
			checkRecords(t, readAll(t, l, next), next)
		})
	}
}

// A purge whose roll cannot create the new segment, on a log with no
// sealed segment to delete, removes nothing: it returns a *WriteError
// (not counted as an append not written), the log keeps its records and
// takes appends, and a later purge succeeds.
func TestPurgeRollFailureRemovesNothing(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentBytes = 1 << 20
	l := openT(t, dir, opts)
	appendN(t, l, 100, 3)
	files := segments(t, dir)
	if len(files) != 1 {
		t.Fatalf("segments %v, want only the active one", files)
	}
	dirSync = func(string) error { return errors.New("injected dir fsync failure") }
	defer func() { dirSync = syncDir }()
	_, removed, err := l.Purge()
	var werr *WriteError
	if !errors.As(err, &werr) || removed != 0 {
		t.Fatalf("Purge with a failing roll: removed %d, %v; want 0 and a *WriteError", removed, err)
	}
	dirSync = syncDir
	if got := segments(t, dir); !slices.Equal(got, files) {
		t.Fatalf("segments %v → %v after a failed purge", files, got)
	}
	if s := l.Stats(); s.Oldest != 0 || s.SegmentsDeleted != 0 || s.WriteErrors != 0 {
		t.Fatalf("after a failed purge: %+v", s)
	}
	checkRecords(t, readAll(t, l, 0), 0)
	appendN(t, l, 5, 1)
	next := l.Next()
	if first, removed, err := l.Purge(); err != nil || first != next || removed != next {
		t.Fatalf("Purge = %d, %d, %v; want %d, %d", first, removed, err, next, next)
	}
	checkPurged(t, l, next)
}

// On a full disk, where the roll cannot create the new segment until
// space is freed, a purge deletes the sealed segments first, then rolls:
// the purge completes, the log takes appends, and it opens again purged.
// With no room even then (the directory cannot be fsynced either), it
// deletes the oldest segment only, keeps the rest, and reports what it
// removed, with the roll's *WriteError.
func TestPurgeFullDiskDeletesSealedFirst(t *testing.T) {
	for _, roomAfter := range []bool{true, false} {
		t.Run(fmt.Sprintf("room_after_delete=%v", roomAfter), func(t *testing.T) {
			dir := t.TempDir()
			l := openT(t, dir, testOptions())
			appendN(t, l, 100, 3)
			if activeSize(l) == segmentHeaderSize {
				appendN(t, l, 1, 1)
			}
			files := segments(t, dir)
			if len(files) < 3 {
				t.Fatalf("segments %v, want sealed ones", files)
			}
			next := l.Next()
			// No new file can be made while the oldest segment is on disk
			// (or at all): the roll's fsync of the directory fails.
			oldest := segPath(dir, files[0])
			full := errors.New("injected: no space left on device")
			dirSync = func(d string) error {
				if _, err := os.Stat(oldest); err == nil || !roomAfter {
					return full
				}
				return syncDir(d)
			}
			defer func() { dirSync = syncDir }()
			first, removed, err := l.Purge()
			dirSync = syncDir
			if !roomAfter {
				// The directory cannot be fsynced at all: the oldest
				// segment goes, and no other, as a later deletion could
				// reach the disk before it (dropHead).
				kept := files[1]
				var werr *WriteError
				if !errors.As(err, &werr) || !errors.Is(err, full) || removed != kept {
					t.Fatalf("Purge with no room at all = %d, %d, %v; want removed %d and a *WriteError", first, removed, err, kept)
				}
				if got := segments(t, dir); !slices.Equal(got, files[1:]) {
					t.Fatalf("segments %v after a purge with no room, want %v", got, files[1:])
				}
				if l.Oldest() != kept || l.Next() != next {
					t.Fatalf("log [%d, %d), want [%d, %d)", l.Oldest(), l.Next(), kept, next)
				}
				checkRecords(t, readAll(t, l, kept), kept)
				appendN(t, l, 5, 2)
				checkRecords(t, readAll(t, l, kept), kept)
				if s := l.Stats(); s.WriteErrors != 0 || s.SegmentsDeleted != 1 {
					t.Fatalf("stats after the failed purge: %+v", s)
				}
				return
			}
			if err != nil || first != next || removed != next {
				t.Fatalf("Purge on a full disk = %d, %d, %v; want %d, %d", first, removed, err, next, next)
			}
			checkPurged(t, l, next)
			if got := segments(t, dir); !slices.Equal(got, []uint64{next}) {
				t.Fatalf("segments %v after the purge, want [%d]", got, next)
			}
			appendN(t, l, 10, 3)
			checkRecords(t, readAll(t, l, next), next)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openT(t, dir, testOptions())
			if l2.Oldest() != next || l2.Next() != next+10 {
				t.Fatalf("reopened [%d, %d), want [%d, %d)", l2.Oldest(), l2.Next(), next, next+10)
			}
			checkRecords(t, readAll(t, l2, next), next)
		})
	}
}

// Retention and TruncateBefore after a purge see its log: nothing below
// the purge point, the active segment kept; later segments go as usual.
// Run concurrently with purges and appends they never leave a gap.
func TestPurgeWithRetentionAndTruncate(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.RetentionBytes = 3000
	l := openT(t, dir, opts)
	appendN(t, l, 100, 3)
	next := l.Next()
	if _, _, err := l.Purge(); err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateBefore(next + 1000); err != nil {
		t.Fatal(err)
	}
	checkPurged(t, l, next)
	deleted := l.Stats().SegmentsDeleted
	appendN(t, l, 100, 3) // more than RetentionBytes
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.Oldest() <= next || l.Stats().SegmentsDeleted <= deleted {
		t.Fatalf("retention after a purge: oldest %d (purge point %d), deleted %d → %d", l.Oldest(), next, deleted, l.Stats().SegmentsDeleted)
	}
	cut := l.Next() - 10
	if err := l.TruncateBefore(cut); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, l, l.Oldest()), l.Oldest())

	// All at once: appends, purges, retention passes and truncations.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := l.EnforceRetention(); err != nil {
				t.Errorf("retention: %v", err)
				return
			}
			if err := l.TruncateBefore(l.Next() - 5); err != nil {
				t.Errorf("truncate: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			first, _, err := l.Purge()
			if err != nil {
				t.Errorf("purge: %v", err)
				return
			}
			if o := l.Oldest(); o < first {
				t.Errorf("Oldest %d after a purge to %d", o, first)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	appendN(t, l, 400, 2)
	close(stop)
	wg.Wait()
	oldest, next := l.Oldest(), l.Next()
	checkRecords(t, readAll(t, l, oldest), oldest)
	l.Close()
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if l.Oldest() != oldest || l.Next() != next {
		t.Fatalf("reopened at [%d, %d), want [%d, %d)", l.Oldest(), l.Next(), oldest, next)
	}
}

// A closed log refuses a purge, and changes no file.
func TestPurgeClosed(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	appendN(t, l, 50, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := dirFiles(t, dir)
	if _, _, err := l.Purge(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Purge of a closed log: %v", err)
	}
	if got := dirFiles(t, dir); !slices.Equal(got, files) {
		t.Fatalf("files %v → %v", files, got)
	}
	m := NewMemory(0, 0)
	m.Close()
	if _, _, err := m.Purge(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Purge of a closed memory log: %v", err)
	}
}

// Memory's Purge drops every record: Oldest becomes Next, reads below get
// *TooOldError, records already read stay valid, appends go on from Next
// and the ring takes as many as before.
func TestMemoryPurge(t *testing.T) {
	m := NewMemory(8, 1<<20)
	appendN(t, m, 20, 3)
	read, err := m.Read(14, 3, 1<<20)
	if err != nil || len(read) != 3 {
		t.Fatalf("Read: %d records, %v", len(read), err)
	}
	first, _, err := m.Purge()
	if err != nil || first != 20 {
		t.Fatalf("Purge = %d, %v; want 20", first, err)
	}
	checkPurged(t, m, 20)
	checkRecords(t, read, 14)
	if first, _, err := m.Purge(); err != nil || first != 20 {
		t.Fatalf("second Purge = %d, %v", first, err)
	}
	appendN(t, m, 8, 2)
	if m.Oldest() != 20 || m.Next() != 28 {
		t.Fatalf("log [%d, %d) after 8 appends, want [20, 28)", m.Oldest(), m.Next())
	}
	checkRecords(t, readAll(t, m, 20), 20)
	appendN(t, m, 3, 1) // the ring's bound applies as before
	if m.Oldest() != 23 {
		t.Fatalf("Oldest %d with a ring of 8 and Next %d", m.Oldest(), m.Next())
	}
	if off, err := m.OffsetForTime(time.Time{}); err != nil || off != 23 {
		t.Fatalf("OffsetForTime = %d, %v", off, err)
	}
}
