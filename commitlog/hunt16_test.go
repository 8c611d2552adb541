package commitlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// dirSyncsFailing makes the first n calls of dirSync fail with EIO (the
// later ones fsync), and records, for each call, whether the file at
// watch existed when it was made, until the test ends.
func dirSyncsFailing(t *testing.T, n int, watch string) (calls func() []bool) {
	var mu sync.Mutex
	var seen []bool
	dirSync = func(d string) error {
		_, err := os.Lstat(watch)
		mu.Lock()
		seen = append(seen, err == nil)
		k := len(seen)
		mu.Unlock()
		if k <= n {
			return &os.PathError{Op: "sync", Path: d, Err: syscall.EIO}
		}
		return syncDir(d)
	}
	t.Cleanup(func() { dirSync = syncDir })
	return func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return append([]bool(nil), seen...)
	}
}

// TestHunt16FailedRollRemovalIsSynced: a roll whose new segment cannot be
// made durable (the file's or the directory's fsync fails) removes the
// file. Its name may have reached the disk already (the two fsyncs run
// concurrently: the directory's may have succeeded), so the removal must
// be fsynced too: else a power failure can bring the file back, at an
// offset the old segment, still active, goes on to hold records at. The
// roll fsyncs the directory after the removal, whether it made the
// segment itself or from the spare prepared ahead.
func TestHunt16FailedRollRemovalIsSynced(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spare bool
		fails int // directory fsyncs that fail: the spare's, then the roll's own
	}{
		{"created in the roll", false, 1},
		{"spare, then created in the roll", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tc.spare {
				setOpenSpare(t, func(string) (*os.File, error) { return nil, errors.New("no spare in this test") })
			}
			l := openT(t, dir, testOptions())
			rollAppend(t, l, 4)
			if tc.spare {
				eventually(t, "a spare segment prepared", func() bool { return spareReady(l) })
			}
			calls := dirSyncsFailing(t, tc.fails, segPath(dir, 4))
			_, err := l.Append(context.Background(), [][]byte{rollBody(4)})
			if _, ok := errors.AsType[*WriteError](err); !ok || !errors.Is(err, syscall.EIO) {
				t.Fatalf("roll with the directory fsync failing: %v, want a *WriteError wrapping EIO", err)
			}
			if _, err := os.Lstat(segPath(dir, 4)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the segment of the failed roll is left: %v", err)
			}
			got := calls()
			synced := false
			for _, existed := range got[min(tc.fails, len(got)):] {
				synced = synced || !existed
			}
			if !synced {
				t.Fatalf("the failed roll removed segment 4 without fsyncing the directory after (dir fsyncs, segment there: %v)", got)
			}
			rollAppend(t, l, 1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			checkRollBodies(t, openT(t, dir, testOptions()), 5)
		})
	}
}

// TestHunt16NoRecordBeforeRemovalSynced: when the directory cannot be
// fsynced after a failed roll removed its segment, the removal may not
// be on disk. A record written then into the segment that stayed active
// (a small append that fits) would, after a power failure bringing the
// removed file back, lie at an offset the old segment now overlaps, and
// Open would refuse the log. So no record is written until the directory
// fsync succeeds: such an append is a *WriteError, and the next ones go
// on once the directory syncs again.
func TestHunt16NoRecordBeforeRemovalSynced(t *testing.T) {
	dir := t.TempDir()
	setOpenSpare(t, func(string) (*os.File, error) { return nil, errors.New("no spare in this test") })
	opts := testOptions()
	l := openT(t, dir, opts)
	rollAppend(t, l, 4)
	dirSyncsFailing(t, 1<<30, segPath(dir, 4))
	if _, err := l.Append(context.Background(), [][]byte{rollBody(4)}); err == nil {
		t.Fatal("roll succeeded with the directory fsync failing")
	}
	small := [][]byte{[]byte("fits the old segment")}
	_, err := l.Append(context.Background(), small)
	if err == nil {
		// The crash image: the removal of segment 4 did not reach the
		// disk, its header did.
		crash := copyDir(t, l.Dir())
		if err := os.WriteFile(segPath(crash, 4), segmentHeaderBytes(4, 1), 0o644); err != nil {
			t.Fatal(err)
		}
		_, oerr := Open(crash, opts)
		t.Fatalf("a record was written into the old segment before the removal of the failed roll's segment was durable; after a power failure bringing that file back, Open: %v", oerr)
	}
	if _, ok := errors.AsType[*WriteError](err); !ok {
		t.Fatalf("append before the removal is durable: %v, want a *WriteError", err)
	}
	dirSync = syncDir
	first, err := l.Append(context.Background(), small)
	if err != nil || first != 4 {
		t.Fatalf("append once the directory syncs: at %d, %v", first, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if l.Next() != 5 || len(readAll(t, l, 0)) != 5 {
		t.Fatalf("reopened with Next %d, want 5", l.Next())
	}
	if _, err := os.Lstat(filepath.Join(dir, segmentName(4))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("segment 4 exists: %v", err)
	}
}

// tornBatchImage is the crash image of a SyncAlways log: acked records
// appended and fsynced, then a batch of unacked records written whose
// fsync had not returned when the power failed. It returns the log's
// directory, the segment's size before the batch (the durable end) and
// after it, and the number of acked records.
func tornBatchImage(t *testing.T) (dir string, durable, size int64, acked uint64) {
	t.Helper()
	opts := bigSegments()
	opts.Sync = SyncAlways
	dir = t.TempDir()
	l := openT(t, dir, opts)
	// Acked records until the durable end lies well inside a 4 KiB page.
	for l.Next() < 20 || activeSize(l)%4096 < 200 || activeSize(l)%4096 > 3000 {
		appendN(t, l, 1, 1)
	}
	acked = l.Next()
	durable = activeSize(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The batch: 40 records of 300 bytes, none of them zero, in one write.
	var b []byte
	for i := range uint64(40) {
		p := make([]byte, 300)
		for j := range p {
			p[j] = byte('A' + (int(i)+j)%26)
		}
		b = appendRecord(b, acked+i, 1, p)
	}
	f, err := os.OpenFile(segPath(dir, 0), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, durable); err != nil {
		t.Fatal(err)
	}
	return dir, durable, durable + int64(len(b)), acked
}

// zeroRange zeroes [from, to) of the file at path: what a write that had
// not reached the disk leaves there (the blocks as they were: zeros past
// the durable end).
func zeroRange(t *testing.T, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, to-from), from); err != nil {
		t.Fatal(err)
	}
}

// TestHunt16TornUnackedBatchIsTornTail: under SyncAlways a batch written
// but not yet fsynced can reach the disk in part, in any order: the page
// cache writes pages back as it likes, and a drive's cache reorders
// sectors. A page lost in the middle of the batch (or the page holding
// the durable end, which then keeps only what its last fsync wrote) is
// followed by records that did reach the disk. Nothing from the lost
// page on was fsynced (an fsync covers everything written before it), so
// no record there was acknowledged: it is a torn tail, truncated with a
// warning, not damage in the middle of the log. Open refused it before.
func TestHunt16TornUnackedBatchIsTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		lost func(durable, size int64) (from, to int64)
	}{
		{"page inside the batch", func(durable, _ int64) (int64, int64) {
			p := (durable+4096)/4096*4096 + 4096
			return p, p + 4096
		}},
		{"page holding the durable end", func(durable, _ int64) (int64, int64) {
			return durable, (durable + 4095) / 4096 * 4096
		}},
		{"one sector", func(durable, _ int64) (int64, int64) {
			s := (durable+2000)/512*512 + 512
			return s, s + 512
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, durable, size, acked := tornBatchImage(t)
			from, to := tc.lost(durable, size)
			if from < durable || to > size-1000 {
				t.Fatalf("lost range [%d, %d) outside the batch [%d, %d)", from, to, durable, size)
			}
			zeroRange(t, segPath(dir, 0), from, to)
			opts := bigSegments()
			opts.Sync = SyncAlways
			logger, logs := capturedLogger()
			opts.Logger = logger
			l, err := Open(dir, opts)
			if err != nil {
				t.Fatalf("Open refused a torn unacknowledged batch (lost bytes %d..%d, durable end %d): %v", from, to, durable, err)
			}
			defer l.Close()
			if l.Next() > acked+uint64((from-durable)/324) || l.Next() < acked {
				t.Fatalf("Next %d: want the acked %d plus at most the records wholly before the lost bytes", l.Next(), acked)
			}
			checkRecords(t, readAll(t, l, 0)[:acked], 0)
			if !strings.Contains(logs.String(), "torn tail") {
				t.Fatalf("no torn-tail warning:\n%s", logs)
			}
			if got := l.Stats().RecoveryTruncatedBytes; got <= 0 || got > size-durable {
				t.Fatalf("RecoveryTruncatedBytes %d, want within the batch's %d", got, size-durable)
			}
			appendN(t, l, 2, 1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(dir); err != nil {
				t.Fatalf("Verify after recovery: %v", err)
			}
		})
	}
}

// TestHunt16MidLogDamageStillRefused: damage that is not what a torn write
// leaves (a bit flipped, bytes changed but not zeroed) with valid records
// after it is still refused, in the acked records as in the batch; and so
// is a zeroed stretch that does not reach a sector boundary.
func TestHunt16MidLogDamageStillRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, durable int64)
	}{
		{"bit flip in an acked record", func(t *testing.T, path string, _ int64) {
			flipBit(t, path, recordPositions(t, path)[5]+recordHeaderSize+1, 2)
		}},
		{"bit flip in the batch", func(t *testing.T, path string, durable int64) {
			flipBit(t, path, durable+1000, 2)
		}},
		{"a sector overwritten", func(t *testing.T, path string, durable int64) {
			s := (durable+2000)/512*512 + 512
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.WriteAt(bytes.Repeat([]byte{0xff}, 512), s)
		}},
		{"zeros not up to a sector boundary", func(t *testing.T, path string, durable int64) {
			s := (durable+2000)/512*512 + 512
			zeroRange(t, path, s+8, s+500)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, durable, _, _ := tornBatchImage(t)
			tc.damage(t, segPath(dir, 0), durable)
			_, err := Open(dir, bigSegments())
			var ce *CorruptionError
			if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "a valid record follows") {
				t.Fatalf("Open = %v, want a CorruptionError: damage with a valid record after it", err)
			}
		})
	}
}

// boundedReader is an io.ReaderAt that fails once more than max bytes
// have been read from it.
type boundedReader struct {
	r    io.ReaderAt
	read atomic.Int64
	max  int64
}

func (b *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	if b.read.Add(int64(len(p))) > b.max {
		return 0, fmt.Errorf("read more than %d bytes", b.max)
	}
	return b.r.ReadAt(p, off)
}

// plausibleHeaders is n bytes holding a plausible record header every 12
// bytes: a length of length and the offset off, checksums wrong.
func plausibleHeaders(n int, length uint32, off uint64) []byte {
	pat := make([]byte, 12)
	binary.BigEndian.PutUint32(pat, length)
	binary.BigEndian.PutUint64(pat[4:], off)
	return bytes.Repeat(pat, n/12)
}

// TestHunt16SearchAfterBadRecordBounded: looking past a bad record for a
// valid one checksums every plausible header, each over the length it
// claims. Bytes crafted to hold one every 12 bytes (a payload a client
// chose, torn by a crash) made that quadratic: Open of an 8 MiB active
// segment so made took four minutes, of a 64 MiB one days. The search now
// stops past a bound of bytes checksummed, and Open refuses the segment
// (not known to be a torn tail), which RepairTail truncates. Zeros of a
// torn write before the point where it stopped still make a torn tail.
func TestHunt16SearchAfterBadRecordBounded(t *testing.T) {
	region := plausibleHeaders(6<<20, 2<<20, 3) // 2 MiB records: checksummed by reading them
	br := &boundedReader{r: bytes.NewReader(region), max: 4*int64(len(region)) + searchBound}
	_, found, err := validRecordAfter(br, 1, int64(len(region)), 3, MaxRecordLimit)
	if found || !errors.Is(err, errSearchBound) {
		t.Fatalf("search of %d bytes of plausible headers: found %v, %v; want errSearchBound within %d bytes read", len(region), found, err, br.max)
	}

	// Through Open: a log of 3 records, then a bad one and 8 MiB of
	// plausible headers claiming 1 MiB each (checksummed in memory).
	src := writeLog(t, bigSegments(), 3, 1)
	b, err := os.ReadFile(segPath(src, 0))
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0xde, 0xad)
	crafted := append(b, plausibleHeaders(8<<20, 1<<20, 3)...)
	dir := copyDir(t, src)
	if err := os.WriteFile(segPath(dir, 0), crafted, 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptionError
	if _, err := Open(dir, bigSegments()); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "not known to be a torn tail") {
		t.Fatalf("Open = %v, want a CorruptionError: the search stopped", err)
	}
	opts := bigSegments()
	opts.RepairTail = true
	l := openT(t, dir, opts)
	if l.Next() != 3 {
		t.Fatalf("RepairTail: Next %d, want 3", l.Next())
	}
	l.Close()

	// The same with the bad record's bytes zeroed to the end of its
	// sector: a torn write, truncated.
	dir = copyDir(t, src)
	torn := append(b[:len(b)-2:len(b)-2], make([]byte, 512)...)
	torn = append(torn, plausibleHeaders(8<<20, 1<<20, 3)...)
	if err := os.WriteFile(segPath(dir, 0), torn, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, bigSegments())
	if l.Next() != 3 {
		t.Fatalf("torn write before the crafted bytes: Next %d, want 3", l.Next())
	}
}
