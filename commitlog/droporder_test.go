package commitlog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// dirImage is the files of a log directory: what a power failure right
// after a directory fsync leaves (name → contents).
type dirImage map[string][]byte

func readImage(t *testing.T, dir string) dirImage {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	img := dirImage{}
	for _, e := range ents {
		if e.Name() == "LOCK" || e.Name() == spareName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		img[e.Name()] = b
	}
	return img
}

// bases is the segment bases of img, ascending.
func (img dirImage) bases() []uint64 {
	var out []uint64
	for name := range img {
		if base, ok := parseName(name, ".log"); ok {
			out = append(out, base)
		}
	}
	slices.Sort(out)
	return out
}

// openImage writes img into a new directory and opens it.
func openImage(t *testing.T, img dirImage, opts Options) error {
	t.Helper()
	dir := t.TempDir()
	for name, b := range img {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(dir, opts)
	if err == nil {
		l.Close()
	}
	return err
}

// TestDropHeadDeletionsReachDiskInOrder: a crash in the middle of a head
// drop (retention, TruncateBefore, Purge) must leave the log's files
// contiguous. A directory's changes that no fsync has made durable may
// reach the disk in any order (POSIX promises nothing; a file system
// without an ordered journal reorders them): so between two directory
// fsyncs at most one segment may be deleted, else a power failure can
// keep an older segment whose newer neighbour's deletion did reach the
// disk, and Open refuses the gap. The test records the directory at
// every directory fsync, and opens, for every interval between two of
// them, each state a crash there could leave: an older segment of the
// interval's deletions kept, a newer one gone.
func TestDropHeadDeletionsReachDiskInOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(l *DiskLog) error
	}{
		{"TruncateBefore", func(l *DiskLog) error { return l.TruncateBefore(l.Next() - 1) }},
		{"retention", func(l *DiskLog) error { return l.EnforceRetention() }},
		{"Purge", func(l *DiskLog) error { _, _, err := l.Purge(); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			l := openT(t, dir, opts)
			appendN(t, l, 80, 2)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			l.opts.RetentionBytes = 1 // retention drops every sealed segment
			images := []dirImage{readImage(t, dir)}
			var mu sync.Mutex
			dirSync = func(d string) error {
				err := syncDir(d)
				if d == dir && err == nil {
					mu.Lock()
					images = append(images, readImage(t, dir))
					mu.Unlock()
				}
				return err
			}
			t.Cleanup(func() { dirSync = syncDir })
			if n := len(images[0].bases()); n < 4 {
				t.Fatalf("want at least 4 segments, have %d", n)
			}
			if err := tc.drop(l); err != nil {
				t.Fatal(err)
			}
			dirSync = syncDir
			mu.Lock()
			images = append(images, readImage(t, dir)) // what the next crash may find unsynced
			mu.Unlock()
			if got := len(images[len(images)-1].bases()); got != 1 {
				t.Fatalf("%d segments left, want 1 (the active one)", got)
			}
			opts.RetentionBytes = 0
			for i := 1; i < len(images); i++ {
				durable, now := images[i-1], images[i]
				var removed []uint64 // oldest first, as the drop deletes
				for _, b := range durable.bases() {
					if _, ok := now[segmentName(b)]; !ok {
						removed = append(removed, b)
					}
				}
				for k := 1; k < len(removed); k++ {
					crash := dirImage{}
					for name, b := range durable {
						crash[name] = b
					}
					delete(crash, segmentName(removed[k]))
					delete(crash, indexName(removed[k]))
					if err := openImage(t, crash, opts); err != nil {
						var ce *CorruptionError
						t.Fatalf("deleted %v between two directory fsyncs: a crash keeping segment %d with %d gone leaves a log Open refuses (corruption %v): %v",
							removed, removed[k-1], removed[k], errors.As(err, &ce), err)
					}
				}
			}
		})
	}
}
