//go:build unix

package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A log that cannot open its files for want of descriptors says so, and
// what to raise: each open log holds its segments and its lock, so a few
// thousand durable streams use up the limit many systems give by default.
func TestOpenOutOfFileDescriptorsSaysWhy(t *testing.T) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if fds, err = os.ReadDir("/dev/fd"); err != nil {
			t.Skip("cannot count open files:", err)
		}
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skip(err)
	}
	low := old
	setRlimitCur(&low.Cur, len(fds)+9) // room for four logs of one segment, not forty
	if low.Cur > old.Cur {
		t.Skipf("open-files limit %d is already below %d", old.Cur, low.Cur)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	dir := t.TempDir()
	for i := range 40 {
		l, err := Open(filepath.Join(dir, fmt.Sprint(i)), testOptions())
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) || !strings.Contains(err.Error(), "out of file descriptors") ||
				!strings.Contains(err.Error(), "raise the open-files limit") {
				t.Fatalf("log %d: %v", i, err)
			}
			return
		}
		defer l.Close()
	}
	t.Fatalf("40 logs opened with a limit of %d open files", low.Cur)
}

// setRlimitCur sets a limit whose type differs between systems (uint64 on
// Linux and macOS, int64 on the BSDs).
func setRlimitCur[T int64 | uint64](cur *T, n int) { *cur = T(n) }
