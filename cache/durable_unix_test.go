//go:build unix

package cache

import (
	"errors"
	"os/signal"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/felixmq/felix/commitlog"
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
	limit := uint64(logSize(e.dir) + 64)
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &orig); err != nil {
		t.Skip(err)
	}
	if orig.Cur != unix.RLIM_INFINITY && orig.Cur < limit {
		t.Skipf("RLIMIT_FSIZE already %d", orig.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: orig.Max}); err != nil {
		t.Skip(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &orig); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
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
