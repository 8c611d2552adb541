package commitlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failWrites makes the segment writes fail as a full disk does (half the
// bytes written, then ENOSPC) while *full is true.
func failWrites(t *testing.T, full *bool) {
	t.Helper()
	writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if !*full {
			return f.WriteAt(b, off)
		}
		n, _ := f.WriteAt(b[:len(b)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	t.Cleanup(func() { writeAt = (*os.File).WriteAt })
}

// An append whose write fails (disk full) stores nothing and leaves the
// log as it was: the error is a *WriteError with the OS reason (the file
// named once), it is counted, it is logged once per writeWarnInterval
// however many appends fail, and once more when appends are written
// again; the next append takes the same offset, and the reopened log
// holds exactly the appends that succeeded.
func TestWriteFailureLeavesLogWritable(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	clock := newFakeClock()
	opts.Clock = clock.Now
	logger, logs := capturedLogger()
	opts.Logger = logger
	l := openT(t, dir, opts)
	appendN(t, l, 3, 1)
	active := filepath.Join(dir, segmentName(0))
	size := fileSize(t, active)
	full := true
	failWrites(t, &full)
	for i := range 5 {
		_, err := l.Append(context.Background(), [][]byte{payload(3)})
		var we *WriteError
		if !errors.As(err, &we) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append %d on a full disk: %v, want a *WriteError wrapping ENOSPC", i, err)
		}
		if n := strings.Count(err.Error(), active); n != 1 {
			t.Fatalf("error %q names the file %d times", err, n)
		}
		clock.Advance(time.Second)
	}
	if got := fileSize(t, active); got != size || l.Next() != 3 {
		t.Fatalf("after the failed appends: file %d bytes (was %d), Next %d", got, size, l.Next())
	}
	if st := l.Stats(); st.WriteErrors != 5 || st.Appends != 3 {
		t.Fatalf("WriteErrors %d, Appends %d; want 5, 3", st.WriteErrors, st.Appends)
	}
	if n := strings.Count(logs.String(), "commitlog: append not written"); n != 1 {
		t.Fatalf("%d warnings for 5 failures within %v:\n%s", n, writeWarnInterval, logs)
	}
	clock.Advance(writeWarnInterval)
	l.Append(context.Background(), [][]byte{payload(3)})
	if n := strings.Count(logs.String(), "commitlog: append not written"); n != 2 {
		t.Fatalf("%d warnings once the interval passed, want 2:\n%s", n, logs)
	}

	full = false
	appendN(t, l, 2, 1)
	if n := strings.Count(logs.String(), "commitlog: appends written again"); n != 1 {
		t.Fatalf("%d notes that writes succeed again, want 1:\n%s", n, logs)
	}
	appendN(t, l, 1, 1)
	if n := strings.Count(logs.String(), "commitlog: appends written again"); n != 1 {
		t.Fatalf("%d notes that writes succeed again after more appends, want 1", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	recs := readAll(t, l, 0)
	if len(recs) != 6 {
		t.Fatalf("reopened with %d records, want 6", len(recs))
	}
	for _, r := range recs {
		if !bytes.Equal(r.Payload, payload(r.Offset)) {
			t.Fatalf("record %d has the wrong payload", r.Offset)
		}
	}
}

// A roll that cannot create its new segment (disk full) is a *WriteError,
// and the appends that retry it do not seal the old segment again and
// again: one fsync and one index write for it, so one warning about the
// index however many appends fail. Once the segment can be created the log
// goes on and reopens with every record.
func TestFailedRollRetriesWithoutResealing(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	logger, logs := capturedLogger()
	opts.Logger = logger
	l := openT(t, dir, opts)
	// The index of segment 0 cannot be written either.
	if err := os.Mkdir(filepath.Join(dir, indexName(0)), 0o755); err != nil {
		t.Fatal(err)
	}
	dirSync = func(string) error { return &os.PathError{Op: "sync", Path: dir, Err: syscall.ENOSPC} }
	defer func() { dirSync = syncDir }()
	body := bytes.Repeat([]byte("x"), 200)
	ok := 0
	for ; ; ok++ {
		if ok == 20 {
			t.Fatal("no roll within 20 appends")
		}
		if _, err := l.Append(context.Background(), [][]byte{body}); err != nil {
			var we *WriteError
			if !errors.As(err, &we) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("failed roll: %v, want a *WriteError wrapping ENOSPC", err)
			}
			break
		}
	}
	fsyncs := l.Stats().Fsyncs
	for range 5 {
		if _, err := l.Append(context.Background(), [][]byte{body}); err == nil {
			t.Fatal("roll succeeded with the directory fsync failing")
		}
	}
	if got := l.Stats().Fsyncs; got != fsyncs {
		t.Fatalf("retried rolls fsynced the old segment again: %d fsyncs, was %d", got, fsyncs)
	}
	if n := strings.Count(logs.String(), "index not written"); n != 1 {
		t.Fatalf("%d index warnings for 6 failed rolls, want 1:\n%s", n, logs)
	}
	dirSync = syncDir
	if _, err := l.Append(context.Background(), [][]byte{body}); err != nil {
		t.Fatalf("append once the segment can be created: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, indexName(0)))
	l = openT(t, dir, opts)
	if got := len(readAll(t, l, 0)); got != ok+1 {
		t.Fatalf("reopened with %d records, want %d", got, ok+1)
	}
}

// A disk that refuses every other append (small writes still fit its last
// blocks) gets one warning and one "written again" per writeWarnInterval,
// not a pair per append (before: 50 of each for 100 appends).
func TestFlappingWritesWarnOncePerInterval(t *testing.T) {
	opts := testOptions()
	clock := newFakeClock()
	opts.Clock = clock.Now
	logger, logs := capturedLogger()
	opts.Logger = logger
	l := openT(t, t.TempDir(), opts)
	full := false
	failWrites(t, &full)
	for i := range 100 {
		full = i%2 == 1
		_, err := l.Append(context.Background(), [][]byte{payload(uint64(i))})
		if full != (err != nil) {
			t.Fatalf("append %d (disk full %v): %v", i, full, err)
		}
	}
	warns := strings.Count(logs.String(), "commitlog: append not written")
	again := strings.Count(logs.String(), "commitlog: appends written again")
	if warns != 1 || again != 1 {
		t.Fatalf("%d warnings and %d 'written again' for 50 failures within an interval, want 1 and 1:\n%s", warns, again, logs)
	}
	clock.Advance(writeWarnInterval)
	full = true
	l.Append(context.Background(), [][]byte{payload(100)})
	if n := strings.Count(logs.String(), "commitlog: append not written"); n != 2 {
		t.Fatalf("%d warnings once the interval passed, want 2", n)
	}
	if st := l.Stats(); st.WriteErrors != 51 {
		t.Fatalf("WriteErrors %d, want 51", st.WriteErrors)
	}
}
