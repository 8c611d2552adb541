package commitlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"
)

// Report is what Verify found.
type Report struct {
	Dir      string
	Segments []SegmentReport
	Oldest   uint64 // first offset in the log
	Next     uint64 // offset after the last valid record
	Records  int64
	Bytes    int64 // sum of segment file sizes
	// TornTail is a torn tail at the end of the active segment: Open
	// truncates it (with a warning); it is not corruption.
	TornTail *CorruptionError
	// Notes are harmless findings that Open repairs: index files missing or
	// stale, index files with no segment.
	Notes []string
	// Corruptions are the places Open refuses. Verify returns the first as
	// its error.
	Corruptions []*CorruptionError
}

// SegmentReport describes one segment file.
type SegmentReport struct {
	File    string
	Base    uint64 // offset of its first record
	Next    uint64 // offset after its last valid record
	Records int64
	Bytes   int64     // file size
	Created time.Time // from the header
	Newest  time.Time // timestamp of the last record (zero when empty)
	Index   string    // "ok", "active (kept in memory)", or what is wrong with the index file
}

// Verify checks every segment and record of the log in dir without
// modifying anything: headers, lengths, checksums, offsets contiguous
// within and across segments, and index files. It returns the first
// corruption as a *CorruptionError (all of them are in the report); a torn
// tail that Open would truncate is reported, not returned.
func Verify(dir string) (Report, error) {
	rep := Report{Dir: dir}
	files, orphans, err := listDir(dir)
	if err != nil {
		return rep, err
	}
	for _, p := range orphans {
		rep.Notes = append(rep.Notes, p+": index file with no segment (Open deletes it)")
	}
	if spare := filepath.Join(dir, spareName); fileExists(spare) {
		rep.Notes = append(rep.Notes, spare+": a segment file prepared for the next roll, not part of the log (Open deletes it)")
	}
	if len(files) > 0 {
		rep.Oldest, rep.Next = files[0].base, files[0].base
	}
	known := true // whether rep.Next is where the next segment must start
	for i, sf := range files {
		active := i == len(files)-1
		if known && sf.base != rep.Next {
			rep.Corruptions = append(rep.Corruptions, &CorruptionError{File: sf.path, Reason: fmt.Sprintf("segment starts at offset %d, expected %d (a gap or overlap between segments)", sf.base, rep.Next)})
			rep.Next = sf.base
		}
		bad := len(rep.Corruptions)
		sr, err := verifySegment(&rep, sf, active)
		if err != nil {
			return rep, err
		}
		// After a corrupt segment its end is unknown: check the next
		// segment on its own, not against it.
		known = len(rep.Corruptions) == bad
		rep.Segments = append(rep.Segments, sr)
		rep.Records += sr.Records
		rep.Bytes += sr.Bytes
		rep.Next = sr.Next
	}
	if len(rep.Corruptions) > 0 {
		return rep, rep.Corruptions[0]
	}
	return rep, nil
}

func verifySegment(rep *Report, sf segmentFile, active bool) (SegmentReport, error) {
	sr := SegmentReport{File: sf.path, Base: sf.base, Next: sf.base}
	f, err := os.Open(sf.path)
	if err != nil {
		return sr, fmt.Errorf("commitlog: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sr, fmt.Errorf("commitlog: %w", err)
	}
	sr.Bytes = fi.Size()
	hdr, err := readHeader(f, sr.Bytes)
	switch {
	case err != nil && active && sr.Bytes <= segmentHeaderSize:
		rep.TornTail = &CorruptionError{File: sf.path, Reason: err.Error() + " (a roll cut short; Open writes a fresh header)"}
		return sr, nil
	case err != nil:
		rep.Corruptions = append(rep.Corruptions, &CorruptionError{File: sf.path, Reason: err.Error()})
		return sr, nil
	case hdr.Base != sf.base:
		rep.Corruptions = append(rep.Corruptions, &CorruptionError{File: sf.path, Position: 8, Reason: fmt.Sprintf("header base offset %d does not match the file name", hdr.Base)})
		return sr, nil
	}
	sr.Created = time.UnixMicro(hdr.Created)
	var ic indexCheck
	if !active {
		ic.entries, ic.why = readIndexFile(indexPathFor(sf), sf.base, sr.Bytes)
	}
	sc, err := scanSegment(f, sf.path, segmentHeaderSize, sr.Bytes, sf.base, MaxRecordLimit, DefaultIndexSpacingBytes, func(r Record, pos int64) error {
		ic.record(r.Offset, pos)
		return nil
	})
	if err != nil {
		return sr, fmt.Errorf("commitlog: %w", err)
	}
	sr.Next, sr.Records = sc.next, sc.records
	if sc.records > 0 {
		sr.Newest = time.UnixMicro(sc.lastTS)
	}
	switch {
	case sc.bad != nil && active && sc.torn:
		rep.TornTail = sc.bad
	case sc.bad != nil:
		rep.Corruptions = append(rep.Corruptions, sc.bad)
	}
	switch {
	case active:
		sr.Index = "active (kept in memory)"
	case ic.done() != "":
		sr.Index = ic.done()
		rep.Notes = append(rep.Notes, indexPathFor(sf)+": "+sr.Index+" (Open rebuilds it)")
	default:
		sr.Index = "ok"
	}
	return sr, nil
}

func indexPathFor(sf segmentFile) string {
	return sf.path[:len(sf.path)-len(".log")] + ".index"
}

// indexCheck matches an index file's entries against the records of its
// segment as a scan meets them: every entry must name a record's position
// and offset.
type indexCheck struct {
	entries []indexEntry
	next    int
	why     string
}

func (c *indexCheck) record(off uint64, pos int64) {
	if c.why != "" || c.next >= len(c.entries) {
		return
	}
	switch e := c.entries[c.next]; {
	case e.Pos < pos:
		c.why = fmt.Sprintf("entry %d (byte %d) is not at a record", c.next, e.Pos)
	case e.Pos == pos && e.Offset != off:
		c.why = fmt.Sprintf("entry %d names offset %d, the record holds %d", c.next, e.Offset, off)
	case e.Pos == pos:
		c.next++
	}
}

// done returns what is wrong with the index ("" if nothing).
func (c *indexCheck) done() string {
	if c.why == "" && c.next < len(c.entries) {
		c.why = fmt.Sprintf("entry %d (byte %d) is past the last record", c.next, c.entries[c.next].Pos)
	}
	return c.why
}

// DumpFormat selects Dump's output.
type DumpFormat int

const (
	// DumpText prints one line per record: offset, time, size and the
	// payload quoted (cut at 200 bytes).
	DumpText DumpFormat = iota
	// DumpJSON prints one JSON object per line: offset, timestamp (RFC
	// 3339), timestamp_us, size, and the payload as text (if valid UTF-8)
	// or base64 (payload_base64).
	DumpJSON
)

var errStop = errors.New("stop")

// Dump writes up to n records (n ≤ 0: all) from offset from to w, reading
// the files directly without modifying them. It stops at the first
// corruption and returns it as a *CorruptionError after writing the valid
// records before it; a torn tail just ends the dump.
func Dump(dir string, from uint64, n int, w io.Writer, format DumpFormat) error {
	files, _, err := listDir(dir)
	if err != nil {
		return err
	}
	written := 0
	for i, sf := range files {
		if i+1 < len(files) && files[i+1].base <= from {
			continue // the whole segment is below from
		}
		err := dumpSegment(sf, i == len(files)-1, func(r Record) error {
			if r.Offset < from {
				return nil
			}
			if err := writeRecord(w, r, format); err != nil {
				return err
			}
			if written++; n > 0 && written >= n {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func dumpSegment(sf segmentFile, active bool, fn func(Record) error) error {
	f, err := os.Open(sf.path)
	if err != nil {
		return fmt.Errorf("commitlog: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("commitlog: %w", err)
	}
	if _, err := readHeader(f, fi.Size()); err != nil {
		if active && fi.Size() <= segmentHeaderSize {
			return nil
		}
		return &CorruptionError{File: sf.path, Reason: err.Error()}
	}
	sc, err := scanSegment(f, sf.path, segmentHeaderSize, fi.Size(), sf.base, MaxRecordLimit, DefaultIndexSpacingBytes,
		func(r Record, _ int64) error { return fn(r) })
	if err != nil {
		return err
	}
	if sc.bad != nil && !(active && sc.torn) {
		return sc.bad
	}
	return nil
}

func writeRecord(w io.Writer, r Record, format DumpFormat) error {
	ts := time.UnixMicro(r.Timestamp).UTC()
	if format == DumpJSON {
		v := struct {
			Offset        uint64 `json:"offset"`
			Timestamp     string `json:"timestamp"`
			TimestampUS   int64  `json:"timestamp_us"`
			Size          int    `json:"size"`
			Payload       string `json:"payload,omitempty"`
			PayloadBase64 []byte `json:"payload_base64,omitempty"`
		}{Offset: r.Offset, Timestamp: ts.Format(time.RFC3339Nano), TimestampUS: r.Timestamp, Size: len(r.Payload)}
		if utf8.Valid(r.Payload) {
			v.Payload = string(r.Payload)
		} else {
			v.PayloadBase64 = r.Payload
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	p, more := r.Payload, ""
	if len(p) > 200 {
		p, more = p[:200], "…"
	}
	_, err := fmt.Fprintf(w, "offset=%d time=%s size=%d payload=%s%s\n", r.Offset, ts.Format(time.RFC3339Nano), len(r.Payload), strconv.Quote(string(p)), more)
	return err
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
