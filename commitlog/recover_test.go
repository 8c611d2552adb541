package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeLog writes n records (batches of batch) into a new dir and closes it.
func writeLog(t *testing.T, opts Options, n, batch int) string {
	t.Helper()
	dir := t.TempDir()
	l := openT(t, dir, opts)
	appendN(t, l, n, batch)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func bigSegments() Options {
	o := testOptions()
	o.SegmentBytes = 1 << 20
	return o
}

// TestRecoverTornTailEveryPosition chops the active segment at every byte
// of its last record: Open keeps the records before it, warns naming the
// file, position and bytes dropped, and Verify passes afterwards.
func TestRecoverTornTailEveryPosition(t *testing.T) {
	src := writeLog(t, bigSegments(), 6, 1)
	path := segPath(src, 0)
	pos := recordPositions(t, path)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := pos[len(pos)-1]
	for cut := last; cut < int64(len(full)); cut++ {
		dir := copyDir(t, src)
		if err := os.Truncate(segPath(dir, 0), cut); err != nil {
			t.Fatal(err)
		}
		opts := bigSegments()
		logger, logs := capturedLogger()
		opts.Logger = logger
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		if l.Next() != 5 || l.Stats().RecoveryTruncatedBytes != cut-last {
			t.Fatalf("cut at %d: Next %d, truncated %d", cut, l.Next(), l.Stats().RecoveryTruncatedBytes)
		}
		checkRecords(t, readAll(t, l, 0), 0)
		l.Close()
		if cut > last {
			want := fmt.Sprintf("file=%s position=%d bytes_dropped=%d", segPath(dir, 0), last, cut-last)
			if !strings.Contains(logs.String(), want) {
				t.Fatalf("cut at %d: no warning with %q in\n%s", cut, want, logs)
			}
		}
		if fi, _ := os.Stat(segPath(dir, 0)); fi.Size() != last {
			t.Fatalf("cut at %d: file is %d bytes, want %d", cut, fi.Size(), last)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatalf("cut at %d: Verify after recovery: %v", cut, err)
		}
	}
}

// TestRecoverIdempotent: opening a recovered log again changes nothing.
func TestRecoverIdempotent(t *testing.T) {
	dir := writeLog(t, testOptions(), 40, 3)
	path := segPath(dir, segments(t, dir)[len(segments(t, dir))-1])
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	var states []string
	for range 3 {
		l := openT(t, dir, testOptions())
		states = append(states, fmt.Sprint(l.Oldest(), l.Next(), len(readAll(t, l, 0)), segments(t, dir)))
		l.Close()
	}
	if states[0] != states[1] || states[1] != states[2] {
		t.Fatalf("reopening changed the state: %v", states)
	}
}

func TestRecoverBitFlipInTheMiddle(t *testing.T) {
	src := writeLog(t, bigSegments(), 6, 1)
	path := segPath(src, 0)
	pos := recordPositions(t, path)
	for _, c := range []struct {
		name string
		at   int64 // byte to flip
	}{
		{"payload", pos[2] + recordHeaderSize + 1},
		{"length", pos[2] + 3},
		{"offset", pos[2] + 11},
		{"timestamp", pos[2] + 19},
		{"checksum", pos[2] + 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, src)
			flipBit(t, segPath(dir, 0), c.at, 0)
			_, err := Open(dir, bigSegments())
			var ce *CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.File != segPath(dir, 0) || ce.Position != pos[2] {
				t.Fatalf("Open = %v; want a CorruptionError at %s byte %d", err, segPath(dir, 0), pos[2])
			}
			if _, err := Verify(dir); !errors.As(err, &ce) || ce.Position != pos[2] {
				t.Fatalf("Verify = %v", err)
			}
		})
	}
}

// TestRecoverBitFlipInTheLastRecord: a damaged last record cannot be told
// from a torn write, so it is truncated (the documented rule).
func TestRecoverBitFlipInTheLastRecord(t *testing.T) {
	src := writeLog(t, bigSegments(), 6, 1)
	pos := recordPositions(t, segPath(src, 0))
	last := pos[len(pos)-1]
	for _, at := range []int64{last + 1, last + 8, last + 22, last + recordHeaderSize + 5} {
		dir := copyDir(t, src)
		flipBit(t, segPath(dir, 0), at, 3)
		l := openT(t, dir, bigSegments())
		if l.Next() != 5 {
			t.Fatalf("flip at %d: Next %d, want the last record dropped", at, l.Next())
		}
		checkRecords(t, readAll(t, l, 0), 0)
	}
}

// TestRecoverWrongOffset: a well-formed record with the wrong offset is
// corruption even at the tail.
func TestRecoverWrongOffset(t *testing.T) {
	dir := writeLog(t, bigSegments(), 3, 1)
	f, err := os.OpenFile(segPath(dir, 0), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendRecord(nil, 7, 0, []byte("x")))
	f.Close()
	var ce *CorruptionError
	if _, err := Open(dir, bigSegments()); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "offset 7, expected 3") {
		t.Fatalf("Open = %v", err)
	}
}

func TestRecoverRepairTail(t *testing.T) {
	dir := writeLog(t, bigSegments(), 6, 1)
	pos := recordPositions(t, segPath(dir, 0))
	flipBit(t, segPath(dir, 0), pos[2]+recordHeaderSize, 0)
	opts := bigSegments()
	opts.RepairTail = true
	l := openT(t, dir, opts)
	if l.Next() != 2 {
		t.Fatalf("RepairTail: Next %d, want 2", l.Next())
	}
	appendN(t, l, 3, 1)
	checkRecords(t, readAll(t, l, 0), 0)
}

func TestRecoverSegmentGap(t *testing.T) {
	dir := writeLog(t, testOptions(), 60, 2)
	segs := segments(t, dir)
	os.Remove(segPath(dir, segs[2]))
	var ce *CorruptionError
	_, err := Open(dir, testOptions())
	if !errors.As(err, &ce) || ce.File != segPath(dir, segs[3]) || ce.Position != 0 {
		t.Fatalf("Open with a missing middle segment = %v", err)
	}
	if _, err := Verify(dir); !errors.As(err, &ce) || ce.File != segPath(dir, segs[3]) {
		t.Fatalf("Verify = %v", err)
	}
	// Dropping the head instead is what retention does: a valid log.
	dir = writeLog(t, testOptions(), 60, 2)
	segs = segments(t, dir)
	os.Remove(segPath(dir, segs[0]))
	l := openT(t, dir, testOptions())
	if l.Oldest() != segs[1] {
		t.Fatalf("Oldest %d, want %d", l.Oldest(), segs[1])
	}
	checkRecords(t, readAll(t, l, segs[1]), segs[1])
}

func TestRecoverSealedSegment(t *testing.T) {
	src := writeLog(t, testOptions(), 60, 2)
	seg := segPath(src, segments(t, src)[1])
	pos := recordPositions(t, seg)

	// The records after the last index entry are checked on every Open.
	dir := copyDir(t, src)
	p := filepath.Join(dir, filepath.Base(seg))
	flipBit(t, p, pos[len(pos)-1]+recordHeaderSize, 1)
	var ce *CorruptionError
	if _, err := Open(dir, testOptions()); !errors.As(err, &ce) || ce.File != p || ce.Position != pos[len(pos)-1] {
		t.Fatalf("Open with a bad sealed tail = %v", err)
	}

	// A flip in the middle of a sealed segment is found by VerifyOnOpen,
	// by Verify, and by any read of it; never skipped.
	dir = copyDir(t, src)
	p = filepath.Join(dir, filepath.Base(seg))
	flipBit(t, p, pos[0]+recordHeaderSize, 1)
	opts := testOptions()
	opts.VerifyOnOpen = true
	if _, err := Open(dir, opts); !errors.As(err, &ce) || ce.File != p || ce.Position != pos[0] {
		t.Fatalf("Open(VerifyOnOpen) = %v", err)
	}
	if _, err := Verify(dir); !errors.As(err, &ce) || ce.Position != pos[0] {
		t.Fatalf("Verify = %v", err)
	}
	l := openT(t, dir, testOptions())
	base := segments(t, dir)[1]
	if _, err := l.Read(base, 1, 1); !errors.As(err, &ce) || ce.File != p || ce.Position != pos[0] {
		t.Fatalf("Read of the damaged record = %v", err)
	}

	// A damaged header.
	dir = copyDir(t, src)
	p = filepath.Join(dir, filepath.Base(seg))
	flipBit(t, p, 9, 0)
	if _, err := Open(dir, testOptions()); !errors.As(err, &ce) || ce.File != p || ce.Position != 0 {
		t.Fatalf("Open with a bad sealed header = %v", err)
	}
}

// TestRecoverIndex: a missing, damaged or lying index file costs a rebuild
// (or a scan), never records.
func TestRecoverIndex(t *testing.T) {
	src := writeLog(t, testOptions(), 60, 1)
	base := segments(t, src)[1]
	ix := func(dir string) string { return filepath.Join(dir, indexName(base)) }
	good, err := os.ReadFile(ix(src))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseIndex(good, base, 1024)
	if err != nil || len(entries) < 2 {
		t.Fatalf("index of segment %d: %d entries, %v", base, len(entries), err)
	}
	for _, c := range []struct {
		name  string
		index []byte // nil: removed
	}{
		{"missing", nil},
		{"truncated", good[:len(good)-3]},
		{"garbage", bytes.Repeat([]byte{0xAB}, 100)},
		{"last entry off a record", encodeIndex(base, append(entries[:len(entries)-1:len(entries)-1], indexEntry{entries[len(entries)-1].Offset, entries[len(entries)-1].Pos + 1}))},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, src)
			os.Remove(ix(dir))
			if c.index != nil {
				os.WriteFile(ix(dir), c.index, 0o644)
			}
			rep, err := Verify(dir)
			if err != nil || len(rep.Notes) == 0 {
				t.Fatalf("Verify: %v, notes %q", err, rep.Notes)
			}
			opts := testOptions()
			logger, logs := capturedLogger()
			opts.Logger = logger
			l := openT(t, dir, opts)
			if !strings.Contains(logs.String(), "rebuilding a segment index") {
				t.Fatalf("no rebuild warning in\n%s", logs)
			}
			checkRecords(t, readAll(t, l, 0), 0)
			l.Close()
			if b, _ := os.ReadFile(ix(dir)); !bytes.Equal(b, good) {
				t.Fatal("the rebuilt index differs from the original")
			}
		})
	}

	// A middle entry that passes the structural checks but points off a
	// record: the read notices and scans the segment instead.
	dir := copyDir(t, src)
	lying := append([]indexEntry(nil), entries...)
	lying[1].Pos++
	os.WriteFile(ix(dir), encodeIndex(base, lying), 0o644)
	l := openT(t, dir, testOptions())
	rs, err := l.Read(lying[1].Offset, 2, 1000)
	if err != nil || len(rs) == 0 {
		t.Fatalf("Read through a lying index entry: %v", err)
	}
	checkRecords(t, rs, lying[1].Offset)
}

// TestRecoverAbandonedRoll: a crash while creating a segment leaves a last
// file with an incomplete header; Open gives it a fresh one.
func TestRecoverAbandonedRoll(t *testing.T) {
	for _, size := range []int{0, 5, segmentHeaderSize} {
		dir := writeLog(t, bigSegments(), 4, 1)
		junk := appendSegmentHeader(nil, segmentHeader{Base: 4})[:size]
		if size == segmentHeaderSize {
			junk[25] ^= 1 // a whole header with a bad checksum
		}
		os.WriteFile(segPath(dir, 4), junk, 0o644)
		l := openT(t, dir, bigSegments())
		if l.Next() != 4 {
			t.Fatalf("header %d bytes: Next %d", size, l.Next())
		}
		appendN(t, l, 2, 1)
		checkRecords(t, readAll(t, l, 0), 0)
		l.Close()
		if _, err := Verify(dir); err != nil {
			t.Fatalf("header %d bytes: Verify: %v", size, err)
		}
	}
}

func TestRecoverOrphanIndexRemoved(t *testing.T) {
	dir := writeLog(t, bigSegments(), 2, 1)
	orphan := filepath.Join(dir, indexName(999))
	os.WriteFile(orphan, []byte("x"), 0o644)
	if rep, _ := Verify(dir); len(rep.Notes) != 1 {
		t.Fatalf("Verify notes %q", rep.Notes)
	}
	openT(t, dir, bigSegments()).Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan index still there: %v", err)
	}
}

// TestRecoverOrphanIndexInEmptyDir: index files are removed also when no
// segment is left at all, before Open starts a new segment 0 beside them.
func TestRecoverOrphanIndexInEmptyDir(t *testing.T) {
	dir := t.TempDir()
	orphan := filepath.Join(dir, indexName(0))
	os.WriteFile(orphan, encodeIndex(0, []indexEntry{{0, segmentHeaderSize}, {40, 900}}), 0o644)
	l := openT(t, dir, testOptions())
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan index still beside the new segment 0: %v", err)
	}
	if l.Next() != 0 {
		t.Fatalf("Next %d", l.Next())
	}
}

func TestRecoverHeaderBaseMismatch(t *testing.T) {
	dir := writeLog(t, bigSegments(), 2, 1)
	os.Rename(segPath(dir, 0), segPath(dir, 100))
	var ce *CorruptionError
	if _, err := Open(dir, bigSegments()); !errors.As(err, &ce) || ce.Position != 8 {
		t.Fatalf("Open = %v", err)
	}
}

// TestRecoverZeroTailIsCheap: looking past a torn record for a valid one
// costs no allocation per byte. A run of zeros passes the length and
// offset checks at every byte when the expected offset is 0; a torn
// 16 MiB record of zeros at the head of a new log took Open minutes.
func TestRecoverZeroTailIsCheap(t *testing.T) {
	zeros := bytes.NewReader(make([]byte, 64<<10))
	var found bool
	allocs := testing.AllocsPerRun(1, func() {
		_, found, _ = validRecordAfter(zeros, 1, zeros.Size(), 0, MaxRecordLimit)
	})
	if found {
		t.Fatal("a valid record found in zeros")
	}
	if allocs > 10 {
		t.Fatalf("searching 64 KiB of zeros allocated %v times", allocs)
	}
	// The same through Open: the torn record goes, nothing else.
	dir := t.TempDir()
	seg := appendSegmentHeader(nil, segmentHeader{Base: 0, Created: 1})
	rec := appendRecord(nil, 0, 1, make([]byte, 256<<10))
	os.WriteFile(segPath(dir, 0), append(seg, rec[:len(rec)-1]...), 0o644)
	l := openT(t, dir, testOptions())
	if l.Next() != 0 || l.Stats().RecoveryTruncatedBytes != int64(len(rec)-1) {
		t.Fatalf("Next %d, truncated %d", l.Next(), l.Stats().RecoveryTruncatedBytes)
	}
}
