package commitlog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// A truncation in flight when Close is called (stalled in its fsync) must
// be over by the time Close returns: after Close a log touches no file.
// Otherwise the directory, free again, can be reused at once (a stream
// deleted and declared again, a cache recreated) and the old truncation
// deletes the new log's segment files by name: acknowledged records of
// the new log vanish at its next open. Before the fix Close returned
// while the truncation was stalled, and the new log came back without
// its records.
func TestHunt9CloseWaitsForTruncationInFlight(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.Sync = SyncNever // only the calls under test fsync
	stall, entered, release := stallNextSync(&opts)
	defer release()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 40, 1) // several 1 KiB segments, the active one unsynced
	if l.Stats().Segments < 3 {
		t.Fatalf("%d segments", l.Stats().Segments)
	}
	stall()
	truncated := make(chan error, 1)
	go func() { truncated <- l.TruncateBefore(l.Next() - 1) }()
	within(t, "TruncateBefore's fsync", entered)

	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	eventually(t, "Close to start", l.isClosed.Load)
	// Close has nothing to wait for but the truncation: give it the time
	// to return if it does not wait for it (a bound, not a measure).
	closedEarly := false
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
		closedEarly = true
	case <-time.After(100 * time.Millisecond):
	}
	if closedEarly {
		// The stream is deleted and declared again: a new log in the same
		// directory, with acknowledged records, while the old truncation
		// is still stalled.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		opts2 := testOptions()
		l2, err := Open(dir, opts2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := l2.Append(context.Background(), [][]byte{fmt.Appendf(nil, "new-%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		release()
		if err := <-truncated; err != nil {
			t.Logf("truncation after Close: %v", err)
		}
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		l3 := openT(t, dir, opts2)
		recs := readAll(t, l3, l3.Oldest())
		if l3.Oldest() != 0 || len(recs) != 5 {
			t.Fatalf("Close returned while a truncation was in flight, which then deleted the files of the new log in the same directory: it reopened with %d of its 5 acknowledged records, [%d, %d)", len(recs), l3.Oldest(), l3.Next())
		}
		t.Fatal("Close returned while a truncation was still in flight")
	}
	release()
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// Nothing changes in the directory after Close: a new log there keeps
	// what it is given.
	before := snapshotNames(t, dir)
	l2 := openT(t, dir, opts)
	if l2.Oldest() == 0 || l2.Next() != 40 {
		t.Fatalf("reopened at [%d, %d) after TruncateBefore(39)", l2.Oldest(), l2.Next())
	}
	checkRecords(t, readAll(t, l2, l2.Oldest()), l2.Oldest())
	if after := snapshotNames(t, dir); !bytes.Equal([]byte(before), []byte(after)) {
		t.Fatalf("segments changed across the reopen: %s → %s", before, after)
	}
}

// snapshotNames lists the segment bases of dir as text.
func snapshotNames(t *testing.T, dir string) string {
	t.Helper()
	return fmt.Sprint(segments(t, dir))
}
