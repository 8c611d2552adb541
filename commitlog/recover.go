package commitlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// segmentFile is a segment file found in a log directory.
type segmentFile struct {
	base uint64
	path string
}

// listDir returns the segment files of dir in offset order, and the index
// files that have no segment (left by a retention pass cut short).
func listDir(dir string) (segs []segmentFile, orphans []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("commitlog: %w", err)
	}
	logs := map[uint64]bool{}
	var indexes []segmentFile
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if base, ok := parseName(e.Name(), ".log"); ok {
			segs = append(segs, segmentFile{base, filepath.Join(dir, e.Name())})
			logs[base] = true
		} else if base, ok := parseName(e.Name(), ".index"); ok {
			indexes = append(indexes, segmentFile{base, filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(segs, func(a, b segmentFile) int { return cmpUint(a.base, b.base) })
	for _, ix := range indexes {
		if !logs[ix.base] {
			orphans = append(orphans, ix.path)
		}
	}
	return segs, orphans, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// recover loads the segments of l.dir into l.segs. The rules, also in the
// package documentation:
//   - Segment bases must follow each other: each is the previous segment's
//     last offset + 1. A gap (or an overlap) is corruption.
//   - A sealed segment (any but the last) must have a valid header and be
//     valid to its last byte. Its index file is checked and the records
//     after the last index entry are validated (all of them with
//     VerifyOnOpen); an index that does not check out is rebuilt by a full
//     scan. A sealed segment is never truncated: any bad record in it is
//     corruption.
//   - The active (last) segment is validated record by record. A torn tail
//     (an incomplete record, or a bad length or checksum with no valid
//     record anywhere after it, or with the zeros a torn write leaves
//     before the next valid one: see tornZeros) is truncated, with a
//     warning naming the file, position and bytes dropped. Any other bad
//     record followed by a valid one is corruption unless RepairTail is
//     set. An active segment with no valid header and no records (a roll
//     cut short: the header incomplete, or the zeros of a spare whose
//     header had not reached the disk) is given a fresh header.
//   - Index files with no segment, and a spare segment file (roll.go),
//     are deleted.
func (l *DiskLog) recover() error {
	files, orphans, err := listDir(l.dir)
	if err != nil {
		return err
	}
	if err := l.removeLeftoverSpare(); err != nil {
		return err
	}
	// Orphans go first, also from a directory with no segment left: the
	// segment created next could have an orphan's base.
	for _, p := range orphans {
		l.log.Warn("commitlog: removing an index file with no segment", "file", p)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("commitlog: %w", err)
		}
	}
	if len(files) == 0 {
		s, err := createSegment(l.dir, 0, l.opts.Clock().UnixMicro())
		if err != nil {
			return fmt.Errorf("commitlog: %w", err)
		}
		l.segs = []*segment{s}
		return nil
	}
	expect := files[0].base
	for i, sf := range files {
		s, err := l.openSegment(sf, expect, i == len(files)-1)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		expect = s.next
	}
	return nil
}

// openSegment opens and validates one segment file.
func (l *DiskLog) openSegment(sf segmentFile, expectBase uint64, active bool) (*segment, error) {
	if sf.base != expectBase {
		return nil, &CorruptionError{File: sf.path, Reason: fmt.Sprintf("segment starts at offset %d, expected %d (a gap or overlap between segments)", sf.base, expectBase)}
	}
	f, err := os.OpenFile(sf.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	s := &segment{base: sf.base, path: sf.path, f: f, next: sf.base}
	s.refs.Store(1)
	if err := l.loadSegment(s, active); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (l *DiskLog) loadSegment(s *segment, active bool) error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("commitlog: %w", err)
	}
	size := fi.Size()
	hdr, err := readHeader(s.f, size)
	if err != nil {
		if !active || size > segmentHeaderSize {
			return &CorruptionError{File: s.path, Reason: err.Error()}
		}
		l.log.Warn("commitlog: active segment has no valid header and no records (a roll cut short); writing a fresh header", "file", s.path, "bytes", size, "reason", err)
		hdr = segmentHeader{Base: s.base, Created: l.opts.Clock().UnixMicro()}
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("commitlog: %w", err)
		}
		if err := writeHeader(s.f, hdr.Base, hdr.Created); err != nil {
			return fmt.Errorf("commitlog: %w", err)
		}
		size = segmentHeaderSize
	}
	if hdr.Base != s.base {
		return &CorruptionError{File: s.path, Position: 8, Reason: fmt.Sprintf("header base offset %d does not match the file name", hdr.Base)}
	}
	s.created = hdr.Created
	if active {
		return l.loadActive(s, size)
	}
	return l.loadSealed(s, size)
}

// readHeader reads and validates the header of a segment of this size.
func readHeader(f io.ReaderAt, size int64) (segmentHeader, error) {
	b := make([]byte, segmentHeaderSize)
	if size < segmentHeaderSize {
		return segmentHeader{}, fmt.Errorf("segment header: %d of %d bytes", size, segmentHeaderSize)
	}
	if _, err := f.ReadAt(b, 0); err != nil {
		return segmentHeader{}, noEOF(err)
	}
	return parseSegmentHeader(b)
}

// loadActive validates every record of the active segment, truncating a
// torn tail.
func (l *DiskLog) loadActive(s *segment, size int64) error {
	sc, err := scanSegment(s.f, s.path, segmentHeaderSize, size, s.base, MaxRecordLimit, l.opts.IndexSpacingBytes, nil)
	if err != nil {
		return fmt.Errorf("commitlog: %w", err)
	}
	if sc.bad != nil {
		if !sc.torn && !l.opts.RepairTail {
			return sc.bad
		}
		dropped := size - sc.end
		msg := "commitlog: truncating a torn tail"
		if !sc.torn {
			msg = "commitlog: RepairTail: truncating at the first bad record, dropping the valid records after it"
		}
		l.log.Warn(msg, "file", s.path, "position", sc.end, "bytes_dropped", dropped, "reason", sc.bad.Reason)
		if err := s.f.Truncate(sc.end); err != nil {
			return fmt.Errorf("commitlog: truncate %s: %w", s.path, err)
		}
		l.stats.truncated += dropped
	}
	s.size, s.next, s.lastTS, s.index = sc.end, sc.next, sc.lastTS, sc.index
	return nil
}

// loadSealed checks a sealed segment: its index file and the records after
// the last index entry, or every record when VerifyOnOpen is set or the
// index does not check out (the index is then rewritten).
func (l *DiskLog) loadSealed(s *segment, size int64) error {
	if !l.opts.VerifyOnOpen {
		entries, why := readIndexFile(s.indexPath(), s.base, size)
		if why == "" {
			last := indexEntry{s.base, segmentHeaderSize}
			if len(entries) > 0 {
				last = entries[len(entries)-1]
			}
			sc, err := scanSegment(s.f, s.path, last.Pos, size, last.Offset, MaxRecordLimit, l.opts.IndexSpacingBytes, nil)
			if err != nil {
				return fmt.Errorf("commitlog: %w", err)
			}
			if sc.bad == nil {
				s.size, s.next, s.lastTS = sc.end, sc.next, sc.lastTS
				s.index.entries = entries
				return nil
			}
			why = "the records after its last entry do not check out"
		}
		l.log.Warn("commitlog: rebuilding a segment index", "file", s.indexPath(), "reason", why)
	}
	sc, err := scanSegment(s.f, s.path, segmentHeaderSize, size, s.base, MaxRecordLimit, l.opts.IndexSpacingBytes, nil)
	if err != nil {
		return fmt.Errorf("commitlog: %w", err)
	}
	if sc.bad != nil {
		sc.bad.Reason += " (in a sealed segment)"
		return sc.bad
	}
	s.size, s.next, s.lastTS, s.index = sc.end, sc.next, sc.lastTS, sc.index
	if err := writeIndexFile(s.indexPath(), s.base, s.index.entries); err != nil {
		l.log.Warn("commitlog: index not written", "file", s.indexPath(), "err", err)
	}
	return nil
}

// readIndexFile loads and checks an index file; why says what is wrong with
// it ("" when it is usable).
func readIndexFile(path string, base uint64, segSize int64) ([]indexEntry, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err.Error()
	}
	defer f.Close()
	// An entry per record at most: refuse a file larger than that before
	// reading it.
	maxSize := indexHeaderSize + indexEntrySize*(segSize/recordHeaderSize)
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err.Error()
	}
	if int64(len(b)) > maxSize {
		return nil, "index file larger than its segment can need"
	}
	entries, err := parseIndex(b, base, segSize)
	if err != nil {
		return nil, err.Error()
	}
	return entries, ""
}
