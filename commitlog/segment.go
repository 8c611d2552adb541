package commitlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// segment is one segment file and what the log knows about it. The fields
// marked "guarded by DiskLog.segMu" change only under the log's mu and
// segMu (write), and are read under either.
type segment struct {
	base    uint64
	path    string
	created int64
	f       *os.File

	// guarded by DiskLog.segMu
	size   int64  // bytes of whole records written (plus the header)
	next   uint64 // offset after the last record (== base when empty)
	lastTS int64  // timestamp of the last record (0 when empty)
	index  sparseIndex

	sealed  uint64 // next when a roll last sealed it (0: never); under DiskLog.mu
	indexed uint64 // next when its index file was last written by a roll; under DiskLog.indexMu

	refs      atomic.Int32 // 1 for the log's list, +1 per reader or syncer
	closeOnce sync.Once
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d.log", base) }
func indexName(base uint64) string   { return fmt.Sprintf("%020d.index", base) }

// parseName returns the base offset of a segment or index file name, or
// ok=false for a name that is neither.
// SegmentFileName is the name of the segment file with base offset base
// in a log directory; IndexFileName that of its index (the format is in
// the package documentation). For tools that handle a log's files, such
// as felix backup.
func SegmentFileName(base uint64) string { return segmentName(base) }

// IndexFileName is the name of the index file of the segment with base
// offset base.
func IndexFileName(base uint64) string { return indexName(base) }

// SegmentBases returns the base offsets of the segment files among the
// entries of a log directory, in offset order.
func SegmentBases(ents []fs.DirEntry) []uint64 {
	var bases []uint64
	for _, e := range ents {
		if base, ok := parseName(e.Name(), ".log"); ok && !e.IsDir() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases
}

func parseName(name, ext string) (uint64, bool) {
	stem, found := strings.CutSuffix(name, ext)
	if !found || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	return base, err == nil
}

func (s *segment) indexPath() string {
	return filepath.Join(filepath.Dir(s.path), indexName(s.base))
}

// acquire takes a reference that keeps the file open; the caller must hold
// segMu (read) and have found s in the log's list.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the file.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeOnce.Do(func() { s.f.Close() })
	}
}

// createSegment makes a new empty segment file with its header, fsynced,
// and fsyncs the directory so the file survives a crash.
func createSegment(dir string, base uint64, created int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(base))
	f, err := createSynced(path, segmentHeaderBytes(base, created), dirSync)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	return newSegment(base, path, created, f), nil
}

// newSegment is the segment of the new file f, holding only its header.
func newSegment(base uint64, path string, created int64, f *os.File) *segment {
	s := &segment{base: base, path: path, created: created, f: f, size: segmentHeaderSize, next: base}
	s.refs.Store(1)
	return s
}

func segmentHeaderBytes(base uint64, created int64) []byte {
	return appendSegmentHeader(make([]byte, 0, segmentHeaderSize), segmentHeader{Base: base, Created: created})
}

// createSynced creates the file path, which must not exist, writes b at
// its start and fsyncs it and its directory (with syncD), so that it
// survives a crash with b. If anything fails the file is removed: it may
// or may not survive a crash, and must never lie on disk beside files
// written after it (a segment would overlap the next one).
func createSynced(path string, b []byte, syncD func(string) error) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteAt(b, 0) // an *os.PathError naming path
	if err == nil {
		err = syncFileAndDir(f, filepath.Dir(path), syncD)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// syncFileAndDir fsyncs f and, with syncD, the directory dir holding
// it, concurrently: a new (or newly named) file is durable once both are,
// in whatever order, and the two waits overlap. It returns once both are
// done.
func syncFileAndDir(f *os.File, dir string, syncD func(string) error) error {
	dirErr := make(chan error, 1)
	go func() { dirErr <- syncD(dir) }()
	var err error
	if serr := f.Sync(); serr != nil {
		err = fmt.Errorf("sync %s: %w", f.Name(), serr)
	}
	return errors.Join(err, <-dirErr)
}

// dirSync is syncDir; a test replaces it to make it fail.
var dirSync = syncDir

// writeHeader writes a fresh header at the start of f and fsyncs it.
func writeHeader(f *os.File, base uint64, created int64) error {
	if _, err := f.WriteAt(segmentHeaderBytes(base, created), 0); err != nil {
		return fmt.Errorf("write segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync segment: %w", err)
	}
	return nil
}

// mkdirSynced creates dir and any missing parents, as os.MkdirAll does,
// and fsyncs the parent of every directory it created, so that the new
// directories survive a crash (a new log's records are acknowledged as
// durable once its segment and dir are fsynced: dir must be found again).
func mkdirSynced(dir string) error {
	var created []string // dir's missing ancestors and itself, deepest first
	for p := filepath.Clean(dir); ; {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			break // there, or MkdirAll says what is wrong
		}
		created = append(created, p)
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range created {
		if err := dirSync(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// writeIndexFile writes the segment's index file. The index is an
// accelerator, rebuilt whenever it does not check out, so it is not
// fsynced.
func writeIndexFile(path string, base uint64, entries []indexEntry) error {
	if err := os.WriteFile(path, encodeIndex(base, entries), 0o644); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}
