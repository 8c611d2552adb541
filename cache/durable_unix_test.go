//go:build unix

package cache

import (
	"errors"
	"os/signal"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testwait"
)

// A write the log cannot store (the file size limit, as a full disk)
// fails with a StorageError, counted, and leaves the entry as it was; the
// log takes writes again once it can.
func TestDurableWriteFailureLeavesEntry(t *testing.T) {
	e := newDurableEnv(t, Config{})
	e.opts.SegmentBytes = 1 << 20
	c := e.open()
	mustPut(t, c, "k", "old", PutOptions{})
	mustPut(t, c, "other", "x", PutOptions{})
	fsize := limitFileSize(t)
	fsize.set(uint64(logSize(e.dir) + 64))
	restore := fsize.restore
	big := make([]byte, 200)
	_, err := c.Put("k", big, PutOptions{})
	var we *commitlog.WriteError
	if !errors.Is(err, ErrStorage) || !errors.As(err, &we) {
		t.Fatalf("put past the size limit: %v, want a StorageError over a commitlog.WriteError", err)
	}
	t.Logf("error: %v", err)
	wantGet(t, c, "k", "old")
	if ok, err := c.Remove("other"); ok || !errors.Is(err, ErrStorage) {
		// A delete record is small: it may fit. Then it must have worked.
		if !ok || err != nil {
			t.Fatalf("Remove past the size limit: %v,%v", ok, err)
		}
	}
	st := c.Stats()
	if st.LogWriteErrors == 0 || st.Bytes != entrySize("k", 3)+int64(st.Entries-1)*entrySize("other", 1) {
		t.Fatalf("after the failed write: %+v", st)
	}
	checkInvariants(t, c)
	restore()
	mustPut(t, c, "k", "new", PutOptions{})
	c = e.open()
	wantGet(t, c, "k", "new")
}

// A group write that fails (past the file size limit, as a full disk)
// fails every put of the group with a StorageError over the log's
// WriteError and leaves each of their entries as it was; the write before
// it, and the writes after room is back, are kept across a restart.
func TestDurableGroupWriteFailureLeavesEntries(t *testing.T) {
	e := newDurableEnv(t, Config{Shards: 16})
	e.opts.SegmentBytes = 1 << 20
	arm, entered, release := stallWrite(e)
	defer release()
	c := e.open()
	keys := keysInShards(c, "k", 6, "first")
	for _, k := range keys {
		mustPut(t, c, k, "old", PutOptions{})
	}
	lg := c.dur.log
	fsize := limitFileSize(t)
	restore := fsize.restore

	arm()
	first := make(chan error, 1)
	go func() {
		_, err := c.Put("first", []byte("v"), PutOptions{})
		first <- err
	}()
	testwait.Within(t, "the first write", entered)
	// The first write is done (its hook holds the log's write lock): the
	// file may not grow much past it.
	fsize.set(uint64(logSize(e.dir) + 100))
	before := lg.Stats()
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() { _, errs[i] = c.Put(k, make([]byte, 200), PutOptions{}) })
	}
	eventually(t, "6 puts queued behind the stalled write", func() bool { return lg.Stats().Queued == len(keys) })
	release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("the write before the failure: %v", err)
	}
	for i, err := range errs {
		var we *commitlog.WriteError
		if !errors.Is(err, ErrStorage) || !errors.As(err, &we) {
			t.Fatalf("put %s of the failed group: %v, want a StorageError over a commitlog.WriteError", keys[i], err)
		}
		wantGet(t, c, keys[i], "old")
	}
	st, lst := c.Stats(), lg.Stats()
	if st.LogWriteErrors != uint64(len(keys)) || lst.WriteErrors-before.WriteErrors != uint64(len(keys)) || lst.Writes != before.Writes {
		t.Fatalf("after the failed group write: cache %+v, log %+v (before %+v)", st, lst, before)
	}
	checkInvariants(t, c)
	restore()
	mustPut(t, c, keys[0], "new", PutOptions{})
	want := contents(c)
	c = e.open()
	sameContents(t, "after a restart", contents(c), want)
	wantGet(t, c, "first", "v")
	wantGet(t, c, keys[0], "new")
	wantGet(t, c, keys[1], "old")
}

// fileSizeLimit sets this process's RLIMIT_FSIZE so that writes past it
// fail (EFBIG), as on a full disk, with SIGXFSZ ignored.
type fileSizeLimit struct {
	t        *testing.T
	orig     unix.Rlimit
	restored bool
}

// limitFileSize prepares a file size limit, skipping the test where one
// is already set; the limit is lifted when the test ends (or by restore).
func limitFileSize(t *testing.T) *fileSizeLimit {
	t.Helper()
	l := &fileSizeLimit{t: t}
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &l.orig); err != nil {
		t.Skip(err)
	}
	if l.orig.Cur != unix.RLIM_INFINITY {
		t.Skipf("RLIMIT_FSIZE already %d", l.orig.Cur)
	}
	signal.Ignore(syscall.SIGXFSZ)
	t.Cleanup(func() {
		l.restore()
		signal.Reset(syscall.SIGXFSZ)
	})
	return l
}

// set limits the size of files written from now on to limit bytes.
func (l *fileSizeLimit) set(limit uint64) {
	l.t.Helper()
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: l.orig.Max}); err != nil {
		l.t.Skip(err)
	}
}

// restore lifts the limit; safe to call more than once.
func (l *fileSizeLimit) restore() {
	if !l.restored {
		l.restored = true
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &l.orig); err != nil {
			l.t.Fatal(err)
		}
	}
}
