package commitlog

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
)

// TestHunt15ReadHugeBounds: a bound is an int, and any value is valid
// (the Log contract: at most maxRecords, about maxBytes). A maxBytes near
// math.MaxInt (a caller's "no byte limit") overflowed the size of the
// first chunk read, which came out empty, and a healthy log answered
// "corrupt log ... incomplete record". Memory answers such reads; so must
// DiskLog, across segments and with every from.
func TestHunt15ReadHugeBounds(t *testing.T) {
	l := openT(t, t.TempDir(), testOptions())
	appendN(t, l, 60, 4) // several 1 KiB segments
	if l.Stats().Segments < 3 {
		t.Fatalf("want several segments, have %d", l.Stats().Segments)
	}
	huge := []int{math.MaxInt, math.MaxInt - 1, math.MaxInt / 2, math.MaxInt64 - 4096}
	for _, from := range []uint64{0, 1, 17, 59} {
		for _, maxBytes := range huge {
			for _, maxRecords := range append([]int{0, 3}, huge...) {
				rs, err := l.Read(from, maxRecords, maxBytes)
				if err != nil {
					t.Fatalf("Read(%d, %d, %d): %v", from, maxRecords, maxBytes, err)
				}
				want := 60 - int(from)
				switch {
				case maxRecords == 3:
					want = min(want, 3)
				case maxRecords == 0:
					want = min(want, DefaultReadRecords)
				}
				if len(rs) != want {
					t.Fatalf("Read(%d, %d, %d) = %d records, want %d", from, maxRecords, maxBytes, len(rs), want)
				}
				checkRecords(t, rs, from)
			}
		}
	}
}

// recordDirSyncs makes dirSync record the directories it fsyncs (and
// fsync them), until the test ends.
func recordDirSyncs(t *testing.T) func() []string {
	var mu sync.Mutex
	var dirs []string
	dirSync = func(d string) error {
		mu.Lock()
		dirs = append(dirs, filepath.Clean(d))
		mu.Unlock()
		return syncDir(d)
	}
	t.Cleanup(func() { dirSync = syncDir })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(dirs)
	}
}

// TestHunt15OpenSyncsDirOfRollCutShort: a process killed during a roll,
// after the new segment file got its name (created, or the spare linked)
// and before the directory fsync, leaves a segment whose directory entry
// may exist only in the page cache. Open adopts it as the active segment
// and appends go into it: under SyncAlways they are acknowledged once
// the segment file is fsynced, but without a directory fsync a power
// failure may still lose the file's name, and with it every acknowledged
// record in it. Open must fsync the directory before it takes appends.
func TestHunt15OpenSyncsDirOfRollCutShort(t *testing.T) {
	for _, hdr := range []struct {
		name string
		b    []byte
	}{
		{"valid header", appendSegmentHeader(nil, segmentHeader{Base: 4, Created: 1})},
		{"no header", nil}, // Open writes a fresh one
		{"zeroed spare", make([]byte, segmentHeaderSize)}, // the spare linked, its header not written back
	} {
		t.Run(hdr.name, func(t *testing.T) {
			dir := writeLog(t, bigSegments(), 4, 1)
			if err := os.WriteFile(segPath(dir, 4), hdr.b, 0o644); err != nil {
				t.Fatal(err)
			}
			synced := recordDirSyncs(t)
			opts := bigSegments()
			opts.Sync = SyncAlways
			l := openT(t, dir, opts)
			if got := synced(); !slices.Contains(got, filepath.Clean(dir)) {
				t.Fatalf("Open adopted the segment of a roll cut short without fsyncing its directory (dirs fsynced: %q)", got)
			}
			appendN(t, l, 3, 1)
			checkRecords(t, readAll(t, l, 0), 0)
		})
	}
}

// TestHunt15OpenSyncsCreatedDirs: Open creates the log's directory and any
// missing parents (a stream's first publish: <data>/streams/t/ns/s).
// Their directory entries must be durable before an append is
// acknowledged: fsyncing the segment and the log's directory does not make
// the log's directory itself reachable after a power failure.
func TestHunt15OpenSyncsCreatedDirs(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "t", "ns", "s")
	synced := recordDirSyncs(t)
	opts := testOptions()
	opts.Sync = SyncAlways
	l := openT(t, dir, opts)
	got := synced()
	for _, parent := range []string{root, filepath.Join(root, "t"), filepath.Join(root, "t", "ns"), dir} {
		if !slices.Contains(got, parent) {
			t.Fatalf("Open created %s without fsyncing %s (dirs fsynced: %q)", dir, parent, got)
		}
	}
	appendN(t, l, 3, 1)
	l.Close()

	// Opening an existing log fsyncs nothing more than before for a log
	// whose active segment holds records.
	synced = recordDirSyncs(t)
	openT(t, dir, opts).Close()
	if got := synced(); slices.Contains(got, root) || slices.Contains(got, filepath.Join(root, "t")) {
		t.Fatalf("reopening fsynced parents it did not create: %q", got)
	}
}

// TestHunt15FailedFsyncNotMaskedByConcurrentFsync: Linux reports a
// writeback error to one fsync of a file description only: a second
// fsync of the same file, running alongside or just after the one that
// got the error, returns success though the pages it should have made
// durable were lost. Under SyncAlways the syncer fsyncs while other
// fsyncs run on the same file (the fsync of an append that will roll,
// TruncateBefore, Purge, Sync). When the syncer's fsync failed and
// another one succeeded before the syncer had failed the log, that
// success marked the records synced and Append acknowledged a record
// whose fsync failed. The fsyncs of records now take turns, each
// settling its outcome before the next starts, so the second one sees
// the log failed.
func TestHunt15FailedFsyncNotMaskedByConcurrentFsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := testOptions()
		opts.Sync = SyncAlways
		l, err := Open(t.TempDir(), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		appendN(t, l, 3, 1)

		entered, release := make(chan struct{}), make(chan struct{})
		releaseOnce := sync.OnceFunc(func() { close(release) })
		defer releaseOnce() // before Close, also on failure
		var calls atomic.Int32
		fileSync = func(f *os.File) error {
			if calls.Add(1) == 1 {
				// The syncer's fsync: the disk failed the writeback. It
				// has returned (the error is now consumed) and the syncer
				// is about to handle it.
				close(entered)
				<-release
				return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
			}
			return f.Sync() // sees no error: it was reported once
		}
		t.Cleanup(func() { fileSync = (*os.File).Sync })

		appended := make(chan error, 1)
		go func() {
			_, err := l.Append(context.Background(), [][]byte{[]byte("lost")})
			appended <- err
		}()
		<-entered
		synced := make(chan error, 1)
		go func() { synced <- l.Sync() }() // any other fsync of the file
		synctest.Wait()
		select {
		case err := <-appended:
			if err == nil {
				releaseOnce()
				t.Fatalf("Append acknowledged a record whose fsync failed (a later fsync of the file succeeded first)")
			}
		default:
		}
		releaseOnce()
		if err := <-appended; !errors.Is(err, syscall.EIO) {
			t.Fatalf("Append after a failed fsync: %v, want EIO", err)
		}
		if err := <-synced; !errors.Is(err, syscall.EIO) {
			t.Fatalf("Sync alongside a failed fsync: %v, want EIO", err)
		}
		if _, err := l.Append(context.Background(), [][]byte{[]byte("later")}); !errors.Is(err, syscall.EIO) {
			t.Fatalf("Append after a failed fsync: %v, want the sticky EIO", err)
		}
		if st := l.Stats(); st.Synced > 3 {
			t.Fatalf("Synced %d: the record of the failed fsync counted as durable", st.Synced)
		}
	})
}
