package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// With testOptions' 1 KiB segments, rollBody records take 224 bytes: a
// segment holds four (the third passes half the segment, asking for a
// spare), and the fifth rolls.
func rollBody(i int) []byte {
	b := bytes.Repeat([]byte{'.'}, 200)
	copy(b, fmt.Sprintf("rec-%d", i))
	return b
}

// rollAppend appends rollBody records, numbering them from l.Next().
func rollAppend(t *testing.T, l *DiskLog, n int) {
	t.Helper()
	for range n {
		i := int(l.Next())
		if _, err := l.Append(context.Background(), [][]byte{rollBody(i)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// checkRollBodies checks that l holds rollBody records from its oldest
// offset to want.
func checkRollBodies(t *testing.T, l *DiskLog, want uint64) {
	t.Helper()
	if l.Next() != want {
		t.Fatalf("Next %d, want %d", l.Next(), want)
	}
	for _, r := range readAll(t, l, l.Oldest()) {
		if !bytes.Equal(r.Payload, rollBody(int(r.Offset))) {
			t.Fatalf("record %d holds %.12q", r.Offset, r.Payload)
		}
	}
}

func activeBase(l *DiskLog) uint64 {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	return l.segs[len(l.segs)-1].base
}

func activeSize(l *DiskLog) int64 {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	return l.segs[len(l.segs)-1].size
}

func spareReady(l *DiskLog) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spare.ready
}

func spareExists(t *testing.T, dir string) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(dir, spareName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// blockFirst returns block, for a test hook to call: its first call
// closes entered and returns once release is called (release may be
// called more than once; later calls of block return at once).
func blockFirst() (block func(), entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	return sync.OnceFunc(func() {
		close(in)
		<-out
	}), in, sync.OnceFunc(func() { close(out) })
}

// closeWaits starts l.Close and fails the test if it returns while what
// is still under way (within a bound: a bound, not a measure). The
// returned function returns Close's error once it has returned.
func closeWaits(t *testing.T, l *DiskLog, what string) (closeErr func() error) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	eventually(t, "Close to start", l.isClosed.Load)
	select {
	case <-closed:
		t.Fatalf("Close returned while %s", what)
	case <-time.After(100 * time.Millisecond):
	}
	return func() error { return <-closed }
}

// setOpenSpare replaces the making of spare files for the test.
func setOpenSpare(t *testing.T, f func(path string) (*os.File, error)) {
	openSpare = f
	t.Cleanup(func() { openSpare = createSpareFile })
}

// A segment half full gets the next segment file prepared in the
// background, and the roll makes that very file the next segment (same
// inode), with a valid header; retention does not touch the spare; there
// is never more than one preparation at a time, nor more than one per
// segment; Close removes the spare; the log reopens whole.
func TestRollUsesSegmentPreparedAhead(t *testing.T) {
	dir := t.TempDir()
	var preps, busy, overlap atomic.Int32
	setOpenSpare(t, func(path string) (*os.File, error) {
		preps.Add(1)
		if busy.Add(1) > 1 {
			overlap.Add(1)
		}
		defer busy.Add(-1)
		return createSpareFile(path)
	})
	opts := testOptions()
	l := openT(t, dir, opts)
	const rounds = 8
	for round := range rounds {
		for activeSize(l) < opts.SegmentBytes/2 {
			rollAppend(t, l, 1)
		}
		eventually(t, "a spare segment prepared", func() bool { return spareReady(l) })
		spare, err := os.Stat(filepath.Join(dir, spareName))
		if err != nil {
			t.Fatal(err)
		}
		if round == rounds/2 {
			if err := l.TruncateBefore(l.Next()); err != nil {
				t.Fatal(err)
			}
			if !spareExists(t, dir) || l.Oldest() != activeBase(l) {
				t.Fatalf("TruncateBefore: oldest %d, active %d, spare there: %v", l.Oldest(), activeBase(l), spareExists(t, dir))
			}
		}
		old := activeBase(l)
		for activeBase(l) == old {
			rollAppend(t, l, 1)
		}
		base := activeBase(l)
		seg, err := os.Stat(segPath(dir, base))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(spare, seg) {
			t.Fatalf("round %d: the roll did not use the segment prepared ahead", round)
		}
		if spareExists(t, dir) {
			t.Fatalf("round %d: the spare name is still there after the roll", round)
		}
	}
	if n := preps.Load(); n != rounds {
		t.Fatalf("%d spare preparations for %d rolls", n, rounds)
	}
	if overlap.Load() != 0 {
		t.Fatal("two spare preparations at once")
	}
	want := l.Next()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if spareExists(t, dir) {
		t.Fatal("the spare is still there after Close")
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	checkRollBodies(t, openT(t, dir, testOptions()), want)
}

// A spare file left by a crash is not part of the log: Verify mentions
// it, Open deletes it and changes nothing else. Also when the crash came
// in the middle of a roll that was using it: the spare name and the new
// segment's name both on the file, whose header had not reached the disk
// (it holds the spare's zeros).
// Open then keeps every record, gives the new (last, empty) segment a
// fresh header, and the log goes on.
func TestOpenRemovesLeftoverSpare(t *testing.T) {
	opts := testOptions()
	src := writeLog(t, opts, 20, 1)
	segs := segments(t, src)

	t.Run("half made", func(t *testing.T) {
		dir := copyDir(t, src)
		if err := os.WriteFile(filepath.Join(dir, spareName), []byte("half made"), 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(dir)
		if err != nil || !strings.Contains(strings.Join(rep.Notes, "\n"), spareName) {
			t.Fatalf("Verify: %v, notes %q", err, rep.Notes)
		}
		l := openT(t, dir, opts)
		if spareExists(t, dir) {
			t.Fatal("Open left the spare file")
		}
		if got := segments(t, dir); fmt.Sprint(got) != fmt.Sprint(segs) {
			t.Fatalf("segments %v, were %v", got, segs)
		}
		checkRecords(t, readAll(t, l, 0), 0)
		if l.Next() != 20 {
			t.Fatalf("Next %d", l.Next())
		}
	})

	t.Run("roll cut short", func(t *testing.T) {
		dir := copyDir(t, src)
		spare := filepath.Join(dir, spareName)
		if err := os.WriteFile(spare, make([]byte, segmentHeaderSize), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(spare, segPath(dir, 20)); err != nil {
			t.Fatal(err)
		}
		if rep, err := Verify(dir); err != nil || rep.TornTail == nil {
			t.Fatalf("Verify: %v (torn tail %v), want a roll cut short", err, rep.TornTail)
		}
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if spareExists(t, dir) {
			t.Fatal("Open left the spare name")
		}
		checkRecords(t, readAll(t, l, 0), 0)
		if l.Next() != 20 || activeBase(l) != 20 {
			t.Fatalf("Next %d, active segment %d", l.Next(), activeBase(l))
		}
		appendN(t, l, 3, 1)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatal(err)
		}
		l = openT(t, dir, opts)
		checkRecords(t, readAll(t, l, 0), 0)
		if l.Next() != 23 {
			t.Fatalf("reopened at Next %d, want 23", l.Next())
		}
	})
}

// A spare that cannot be made (a full disk, no file descriptors left)
// costs nothing but the speed-up: every roll creates its segment as
// before, every append succeeds, the reason is logged (at the rolls,
// once per failure), and the log reopens whole.
func TestSparePreparationFailureFallsBack(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EMFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			var tries atomic.Int32
			setOpenSpare(t, func(path string) (*os.File, error) {
				tries.Add(1)
				return nil, &os.PathError{Op: "open", Path: path, Err: errno}
			})
			opts := testOptions()
			logger, logs := capturedLogger()
			opts.Logger = logger
			l := openT(t, dir, opts)
			rollAppend(t, l, 24) // six segments
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if tries.Load() == 0 {
				t.Fatal("no spare was asked for")
			}
			warned := strings.Count(logs.String(), "could not be prepared ahead")
			if warned == 0 || warned > int(tries.Load()) || !strings.Contains(logs.String(), errno.Error()) {
				t.Fatalf("%d warnings for %d failed preparations:\n%s", warned, tries.Load(), logs)
			}
			if errno == syscall.EMFILE && !strings.Contains(logs.String(), "out of file descriptors") {
				t.Fatalf("the warning does not say what EMFILE means:\n%s", logs)
			}
			if spareExists(t, dir) {
				t.Fatal("a spare file is left")
			}
			checkRollBodies(t, openT(t, dir, testOptions()), 24)
		})
	}
}

// A spare that is ready but cannot be used falls back to the segment
// created in the roll: when its name was taken away behind the log's
// back, the roll creates the segment and the append succeeds; when the
// directory cannot be fsynced, neither the spare nor a created segment
// can be made durable: the append is a *WriteError, no new segment file
// is left, and once the directory syncs again the log rolls and keeps
// every acknowledged record.
func TestUnusableSpareFallsBack(t *testing.T) {
	t.Run("name gone", func(t *testing.T) {
		dir := t.TempDir()
		opts := testOptions()
		logger, logs := capturedLogger()
		opts.Logger = logger
		l := openT(t, dir, opts)
		rollAppend(t, l, 3)
		eventually(t, "a spare segment prepared", func() bool { return spareReady(l) })
		if err := os.Remove(filepath.Join(dir, spareName)); err != nil {
			t.Fatal(err)
		}
		rollAppend(t, l, 2)
		if activeBase(l) != 4 {
			t.Fatalf("active segment %d, want 4", activeBase(l))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "could not be used") {
			t.Fatalf("no warning:\n%s", logs)
		}
		checkRollBodies(t, openT(t, dir, testOptions()), 5)
	})

	t.Run("directory fsync fails", func(t *testing.T) {
		dir := t.TempDir()
		l := openT(t, dir, testOptions())
		rollAppend(t, l, 4)
		eventually(t, "a spare segment prepared", func() bool { return spareReady(l) })
		dirSync = func(string) error { return &os.PathError{Op: "sync", Path: dir, Err: syscall.EIO} }
		defer func() { dirSync = syncDir }()
		_, err := l.Append(context.Background(), [][]byte{rollBody(4)})
		var we *WriteError
		if !errors.As(err, &we) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("roll with the directory fsync failing: %v, want a *WriteError wrapping EIO", err)
		}
		if _, err := os.Lstat(segPath(dir, 4)); !errors.Is(err, fs.ErrNotExist) || spareExists(t, dir) {
			t.Fatalf("after the failed roll: segment 4 (%v) or the spare is left", err)
		}
		dirSync = syncDir
		rollAppend(t, l, 1)
		if activeBase(l) != 4 {
			t.Fatalf("active segment %d, want 4", activeBase(l))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		checkRollBodies(t, openT(t, dir, testOptions()), 5)
	})
}

// Close waits for a spare being made, then removes it: a closed log
// changes no file, so its directory can be removed or reused at once.
func TestCloseWaitsForSparePreparation(t *testing.T) {
	dir := t.TempDir()
	block, entered, release := blockFirst()
	defer release()
	setOpenSpare(t, func(path string) (*os.File, error) {
		block()
		return createSpareFile(path)
	})
	l, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	rollAppend(t, l, 3)
	within(t, "the spare's preparation", entered)
	closeErr := closeWaits(t, l, "a spare segment was being made")
	release()
	if err := closeErr(); err != nil {
		t.Fatal(err)
	}
	if spareExists(t, dir) {
		t.Fatal("a spare file is left after Close")
	}
}

// The index file of a sealed segment is written after the roll releases
// the write lock: while it is being written other appends go on, and
// retention may delete the segment meanwhile, which leaves no index file
// behind. Close waits for the write.
func TestSealedIndexWrittenOutsideWriteLock(t *testing.T) {
	dir := t.TempDir()
	block, entered, release := blockFirst()
	defer release()
	writeIndex = func(path string, base uint64, entries []indexEntry) error {
		block()
		return writeIndexFile(path, base, entries)
	}
	defer func() { writeIndex = writeIndexFile }()
	l, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	rollAppend(t, l, 4)
	rolled := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), [][]byte{rollBody(4)})
		rolled <- err
	}()
	within(t, "the index write of the sealed segment", entered)
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		if _, err := l.Append(context.Background(), [][]byte{rollBody(5)}); err != nil {
			t.Error(err)
		}
	}()
	within(t, "an append while the sealed segment's index is written", appended)
	if err := l.TruncateBefore(l.Next()); err != nil {
		t.Fatal(err)
	}
	if l.Oldest() != 4 {
		t.Fatalf("Oldest %d after TruncateBefore, want 4", l.Oldest())
	}
	closeErr := closeWaits(t, l, "an index file was being written")
	release()
	if err := <-rolled; err != nil {
		t.Fatal(err)
	}
	if err := closeErr(); err != nil {
		t.Fatal(err)
	}
	if _, orphans, err := listDir(dir); err != nil || len(orphans) != 0 {
		t.Fatalf("index files with no segment: %v %v", orphans, err)
	}
	checkRollBodies(t, openT(t, dir, testOptions()), 6)
}
