package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// hunt9Backup runs a backup of src into a new directory beside it and
// returns the copy's path, the summary and the error.
func hunt9Backup(t *testing.T, src string) (string, *backupSummary, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "backup")
	sum, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, dst)
	if err != nil {
		assertNoBackup(t, dst)
	}
	return dst, sum, err
}

// checkLogCopy checks that the log in dst holds records r-<i> at offsets
// [from, to) and verifies.
func checkLogCopy(t *testing.T, dst string, from, to uint64) {
	t.Helper()
	rep, err := commitlog.Verify(dst)
	if err != nil {
		t.Fatalf("verify %s: %v", dst, err)
	}
	if rep.Oldest != from || rep.Next != to {
		t.Fatalf("%s: copy [%d, %d), want [%d, %d)", dst, rep.Oldest, rep.Next, from, to)
	}
}

// A durable log whose directory is a symbolic link to another disk (an
// operator moving one busy stream to faster storage: the broker follows
// the link) is copied like any other, as a real directory: the backup
// must hold its records, not drop the stream silently and report ok. A
// link to the whole streams/ directory too.
func TestHunt9BackupFollowsLinkedLogDirs(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	other := filepath.Join(root, "fast-disk")
	makeLog(t, filepath.Join(src, "streams", "t", "ns", "plain"), 30)
	makeLog(t, filepath.Join(other, "linked"), 40)
	if err := os.Symlink(filepath.Join(other, "linked"), filepath.Join(src, "streams", "t", "ns", "linked")); err != nil {
		t.Fatal(err)
	}
	makeLog(t, filepath.Join(other, "caches", "t", "ns", "kv"), 20)
	if err := os.Symlink(filepath.Join(other, "caches"), filepath.Join(src, "caches")); err != nil {
		t.Fatal(err)
	}
	dst, sum, err := hunt9Backup(t, src)
	if err != nil {
		t.Fatalf("backup of a data dir with linked log directories: %v", err)
	}
	checkLogCopy(t, filepath.Join(dst, "streams", "t", "ns", "plain"), 0, 30)
	checkLogCopy(t, filepath.Join(dst, "streams", "t", "ns", "linked"), 0, 40)
	checkLogCopy(t, filepath.Join(dst, "caches", "t", "ns", "kv"), 0, 20)
	if st := sum.logs["streams"]; st == nil || st.logs != 2 || st.records != 70 {
		t.Fatalf("streams copied: %+v", st)
	}
	if st := sum.logs["caches"]; st == nil || st.logs != 1 || st.records != 20 {
		t.Fatalf("caches copied: %+v", st)
	}
	for _, p := range []string{filepath.Join(dst, "caches"), filepath.Join(dst, "streams", "t", "ns", "linked")} {
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			t.Fatalf("%s in the copy: %v, %v; want a real directory (the copy must not point back into the live data)", p, fi, err)
		}
	}
}

// A link loop in a log tree is refused with an error that says where,
// not followed forever; so is a link to a directory that is not there (a
// disk not mounted: its logs must not be left out unsaid). Nothing is
// left behind.
func TestHunt9BackupRefusesBadLinks(t *testing.T) {
	for name, c := range map[string]struct{ link, target, want string }{
		"loop":          {filepath.Join("streams", "t", "ns", "loop"), "..", "symbolic link loop"},
		"loop to root":  {filepath.Join("groups", "t", "up"), "../..", "symbolic link loop"},
		"dangling log":  {filepath.Join("streams", "t", "ns", "gone"), "/nonexistent-felix-disk/gone", "does not exist (is its disk mounted?)"},
		"dangling kind": {"caches", "/nonexistent-felix-disk/caches", "does not exist (is its disk mounted?)"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			src := filepath.Join(root, "data")
			makeLog(t, filepath.Join(src, "streams", "t", "ns", "s"), 5)
			if err := os.MkdirAll(filepath.Join(src, "groups", "t"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(c.target, filepath.Join(src, c.link)); err != nil {
				t.Fatal(err)
			}
			_, _, err := hunt9Backup(t, src)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(src, c.link)) {
				t.Fatalf("backup: %v; want an error naming %s with %q", err, c.link, c.want)
			}
		})
	}
}

// Unusual but valid layouts: an empty log directory (a stream declared
// and never opened), a directory holding only LOCK, a log whose only
// segment was sealed (with its index file; no active segment beside it),
// a log whose active segment is empty (a roll cut short: 0 bytes), an
// empty kind directory. Each is copied as a log that opens, or left out
// when it holds no log; nothing fails.
func TestHunt9BackupUnusualLayouts(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	streams := filepath.Join(src, "streams", "t", "ns")
	if err := os.MkdirAll(filepath.Join(streams, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(streams, "lockonly"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(streams, "lockonly", "LOCK"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "groups"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Only a sealed segment and its index: drop the active segment of a
	// log that rolled once.
	sealed := filepath.Join(streams, "sealed")
	makeLog(t, sealed, 60)
	ents, _ := os.ReadDir(sealed)
	bases := commitlog.SegmentBases(ents)
	if len(bases) < 2 {
		t.Fatalf("%d segments", len(bases))
	}
	for _, b := range bases[1:] {
		os.Remove(filepath.Join(sealed, commitlog.SegmentFileName(b)))
		os.Remove(filepath.Join(sealed, commitlog.IndexFileName(b)))
	}
	// A roll cut short: an empty file for the next segment.
	rolled := filepath.Join(streams, "rolled")
	makeLog(t, rolled, 60)
	v, err := commitlog.Verify(rolled)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rolled, commitlog.SegmentFileName(v.Next)), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	dst, sum, err := hunt9Backup(t, src)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	checkLogCopy(t, filepath.Join(dst, "streams", "t", "ns", "sealed"), 0, bases[1])
	checkLogCopy(t, filepath.Join(dst, "streams", "t", "ns", "rolled"), 0, 60)
	if st := sum.logs["streams"]; st == nil || st.logs != 2 {
		t.Fatalf("streams copied: %+v", st)
	}
	for _, name := range []string{"empty", "lockonly"} {
		if ents, _ := os.ReadDir(filepath.Join(dst, "streams", "t", "ns", name)); len(commitlog.SegmentBases(ents)) > 0 {
			t.Errorf("%s: a log in the copy where there was none", name)
		}
	}
}

// A backup interrupted (Ctrl-C: its context canceled) as it is about to
// read each file of the data dir in turn either fails with the
// cancellation and leaves neither DEST nor a temporary directory, or (cut
// after its last read) completes with every log whole.
func TestHunt9BackupCanceledAtEveryFile(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	makeLog(t, filepath.Join(src, "streams", "t", "ns", "s"), 80)
	makeLog(t, filepath.Join(src, "groups", "t", "ns", "s", "g"), 10)
	makeLog(t, filepath.Join(src, "caches", "t", "ns", "kv"), 30)
	for _, name := range []string{"admin-token", "reset-key"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { backupHook = nil }()
	for k := 0; ; k++ {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		backupHook = func(string) error {
			if n == k {
				cancel()
			}
			n++
			return nil
		}
		dst := filepath.Join(root, fmt.Sprintf("backup-%d", k))
		_, err := runBackup(ctx, backupFlags{cpAPIFlags{dataDir: src}}, dst)
		cancel()
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("canceled at file %d: %v", k, err)
			}
			assertNoBackup(t, dst)
			continue
		}
		checkLogCopy(t, filepath.Join(dst, "streams", "t", "ns", "s"), 0, 80)
		checkLogCopy(t, filepath.Join(dst, "groups", "t", "ns", "s", "g"), 0, 10)
		checkLogCopy(t, filepath.Join(dst, "caches", "t", "ns", "kv"), 0, 30)
		if k < n-1 {
			t.Fatalf("canceled at file %d of %d: the backup went on and succeeded", k, n)
		}
		if k >= n {
			break // canceled after every read: nothing left to interrupt
		}
	}
}
