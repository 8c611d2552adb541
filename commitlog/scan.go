package commitlog

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// recordError is a record that is not valid where it sits. torn is true for
// what a torn write can leave (an incomplete record, an impossible length,
// a checksum mismatch) and false for a well-formed record that is in the
// wrong place (an offset that does not follow).
type recordError struct {
	pos  int64
	err  error
	torn bool
}

func (e *recordError) Error() string { return fmt.Sprintf("byte %d: %v", e.pos, e.err) }

// scanner reads the records of a segment region one after another and
// validates each: length, checksum, and offset == the previous + 1. The
// only allocation is its record buffer, grown only to lengths already
// checked against the limit and against the bytes left in the region.
type scanner struct {
	r      *bufio.Reader
	pos    int64  // position of the next record
	end    int64  // end of the region
	expect uint64 // offset the next record must carry
	limit  uint32
	buf    []byte
}

// scanBuffer is the most a scanner reads at once; a smaller region gets a
// buffer of its size (a broker reopens thousands of small logs at start).
const scanBuffer = 256 << 10

func newScanner(f io.ReaderAt, pos, end int64, expect uint64, limit uint32) *scanner {
	return &scanner{
		r:      bufio.NewReaderSize(io.NewSectionReader(f, pos, end-pos), int(min(end-pos, scanBuffer))),
		pos:    pos,
		end:    end,
		expect: expect,
		limit:  limit,
	}
}

// next returns the next record, whose payload stays valid until the
// following call; io.EOF at the end of the region; a *recordError for an
// invalid record (the scanner does not advance past it); or an I/O error.
func (s *scanner) next() (Record, error) {
	left := s.end - s.pos
	if left == 0 {
		return Record{}, io.EOF
	}
	if left < recordHeaderSize {
		return Record{}, &recordError{pos: s.pos, err: errIncomplete, torn: true}
	}
	hb, err := s.r.Peek(recordHeaderSize)
	if err != nil {
		return Record{}, noEOF(err)
	}
	h := parseRecordHeader(hb)
	if h.Length > s.limit {
		return Record{}, &recordError{pos: s.pos, err: errTooLarge, torn: true}
	}
	n := recordHeaderSize + int64(h.Length)
	if n > left {
		return Record{}, &recordError{pos: s.pos, err: errIncomplete, torn: true}
	}
	if int64(cap(s.buf)) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return Record{}, noEOF(err)
	}
	if recordCRC(b, b[recordHeaderSize:]) != h.CRC {
		return Record{}, &recordError{pos: s.pos, err: errChecksum, torn: true}
	}
	if h.Offset != s.expect {
		return Record{}, &recordError{pos: s.pos, err: fmt.Errorf("record offset %d, expected %d", h.Offset, s.expect)}
	}
	s.pos += n
	s.expect++
	return Record{Offset: h.Offset, Timestamp: h.Timestamp, Payload: b[recordHeaderSize:]}, nil
}

// noEOF turns an EOF inside a region the caller sized from the file into
// the error it is: the file changed under the scan.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// segmentScan is the outcome of scanning a segment region.
type segmentScan struct {
	end     int64  // position after the last valid record
	next    uint64 // offset after the last valid record
	lastTS  int64  // timestamp of the last valid record (0: none)
	records int64  // valid records scanned
	index   sparseIndex
	// bad is the first invalid record, nil when the region is valid to its
	// end. torn says bad is a torn tail: what a torn write leaves, with no
	// valid record anywhere after it, or with the zeros of a write that
	// never reached the disk (tornZeros) before the next valid record.
	bad  *CorruptionError
	torn bool
}

// scanSegment validates the records of f in [pos, end), which must start
// with offset first, building the sparse index as it goes and calling fn
// (if not nil) for each valid record (its payload is valid only during the
// call). A bad record stops the scan; the rest of the region is then
// searched for a valid record, and the bytes up to one for the zeros of a
// torn write, to tell a torn tail from corruption.
func scanSegment(f io.ReaderAt, file string, pos, end int64, first uint64, limit uint32, spacing int64, fn func(Record, int64) error) (segmentScan, error) {
	sc := segmentScan{end: pos, next: first}
	s := newScanner(f, pos, end, first, limit)
	for {
		at := s.pos
		r, err := s.next()
		if err == io.EOF {
			return sc, nil
		}
		var re *recordError
		if errors.As(err, &re) {
			sc.bad = &CorruptionError{File: file, Position: re.pos, Reason: re.err.Error()}
			if !re.torn {
				return sc, nil
			}
			// after: the valid record found, or where the search stopped.
			after, found, err := validRecordAfter(f, re.pos+1, end, s.expect, limit)
			bounded := err == errSearchBound
			if err != nil && !bounded {
				return sc, err
			}
			if !found && !bounded {
				sc.torn = true
				return sc, nil
			}
			za, zb, zeroed, err := tornZeros(f, re.pos, after)
			if err != nil {
				return sc, err
			}
			switch {
			case zeroed:
				// A write that never reached the disk, so never fsynced;
				// whatever follows was written later, and an fsync covers
				// everything written before it: none of it was fsynced.
				sc.torn = true
				sc.bad.Reason += fmt.Sprintf("; bytes %d..%d are zeros, a write torn by a crash (never fsynced): what follows was written after it, so never fsynced either", za, zb)
			case bounded:
				sc.bad.Reason += fmt.Sprintf("; not known to be a torn tail: the search for a valid record after it stopped at byte %d (too many plausible record headers)", after)
			default:
				sc.bad.Reason += fmt.Sprintf("; a valid record follows at byte %d", after)
			}
			return sc, nil
		}
		if err != nil {
			return sc, fmt.Errorf("read %s at byte %d: %w", file, at, err)
		}
		sc.index.note(r.Offset, at, spacing)
		sc.end, sc.next, sc.lastTS = s.pos, s.expect, r.Timestamp
		sc.records++
		if fn != nil {
			if err := fn(r, at); err != nil {
				return sc, err
			}
		}
	}
}

// tornSector is the unit a disk writes whole (or not at all): the
// smallest sector size. A write that had not reached the disk when the
// power failed leaves, in each sector it did not reach, what the sector
// held at the last fsync: the bytes up to the durable end of the file,
// then zeros (a new block reads as zeros, and so does the part of a block
// past the end of the file).
const tornSector = 512

// tornZeros reports whether [from, to), the bytes from a bad record to
// the next valid one, show a write torn by a crash: zeros from a position
// to the end of its sector, at least recordHeaderSize of them (so at
// least a whole record header: a header is never all zeros), beginning
// at from or at a sector boundary. It returns where the zeros are. It
// reads in bounded windows.
//
// Bit rot (a bit flipped, bytes changed) shows no such zeros, and stays
// corruption. A record whose payload holds a whole sector of zeros and is
// damaged elsewhere would pass for torn; so would a sector that a disk
// lost after an fsync reported it written. Both are a disk failing its
// contract; a torn write after a crash is not.
func tornZeros(f io.ReaderAt, from, to int64) (int64, int64, bool, error) {
	const window = 64 * tornSector
	if to <= from {
		return 0, 0, false, nil
	}
	buf := make([]byte, min(window, to-from))
	for start := from / tornSector * tornSector; start < to; start += window {
		lo, hi := max(start, from), min(start+window, to)
		if _, err := f.ReadAt(buf[:hi-lo], lo); err != nil {
			return 0, 0, false, fmt.Errorf("read at byte %d: %w", lo, noEOF(err))
		}
		for b := (lo/tornSector + 1) * tornSector; b <= hi; b += tornSector {
			a := max(from, b-tornSector)
			if b-a >= recordHeaderSize && allZero(buf[a-lo:b-lo]) {
				return a, b, true, nil
			}
		}
	}
	return 0, 0, false, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// errSearchBound is validRecordAfter's error when it stopped searching:
// the checksums it computed passed its bound.
var errSearchBound = errors.New("search bound reached")

// searchBound is the most validRecordAfter checksums, in bytes, beyond
// twice the region it searches.
const searchBound = 64 << 20

// validRecordAfter searches [from, end) for a position holding a valid
// record whose offset is at least minOffset and small enough to fit the
// bytes left (each record takes at least recordHeaderSize bytes). It reads
// in bounded windows and checks a checksum only where the header is
// plausible.
//
// Its work is bounded too: a checksum costs the record's length, and a
// region of crafted bytes (a payload, say) can hold a plausible header
// every few bytes, each claiming megabytes: an 8 MiB tail took Open four
// minutes. Past searchBound plus twice the region's size of checksummed
// bytes, far beyond what real data costs (a header is plausible by chance
// about never, and a real record is checksummed once), it returns
// errSearchBound with the position it reached: whether a valid record
// follows is then unknown, which the caller must not take for a torn
// tail.
func validRecordAfter(f io.ReaderAt, from, end int64, minOffset uint64, limit uint32) (int64, bool, error) {
	const window = 1 << 20
	buf := make([]byte, window+recordHeaderSize)
	budget := searchBound + 2*(end-from)
	for q := from; end-q >= recordHeaderSize; {
		n := min(int64(len(buf)), end-q)
		if _, err := f.ReadAt(buf[:n], q); err != nil {
			return 0, false, fmt.Errorf("read at byte %d: %w", q, noEOF(err))
		}
		for i := int64(0); i+recordHeaderSize <= n; i++ {
			p := q + i
			h := parseRecordHeader(buf[i:])
			if h.Length > limit || int64(h.Length) > end-p-recordHeaderSize {
				continue
			}
			if h.Offset < minOffset || h.Offset-minOffset > uint64((end-p)/recordHeaderSize) {
				continue
			}
			// A record inside the window is checked where it lies: no read,
			// no allocation. Runs of zeros (a zero-filled tail, a torn
			// record of zeros in a log's first segment) pass the checks
			// above at every byte.
			rn := recordHeaderSize + int64(h.Length)
			if budget -= rn; budget < 0 {
				return p, false, errSearchBound
			}
			ok := i+rn <= n && recordCRC(buf[i:], buf[i+recordHeaderSize:i+rn]) == h.CRC
			if i+rn > n {
				var err error
				if ok, err = checksumAt(f, p, buf[i:i+recordHeaderSize], h); err != nil {
					return 0, false, err
				}
			}
			if ok {
				return p, true, nil
			}
		}
		q += n - recordHeaderSize + 1
	}
	return 0, false, nil
}

// checksumAt reports whether the record at p with header hdr (already
// read) has a matching checksum, reading its payload in pieces.
func checksumAt(f io.ReaderAt, p int64, hdr []byte, h recordHeader) (bool, error) {
	crc := crc32.New(castagnoli)
	crc.Write(hdr[:20])
	if _, err := io.Copy(crc, io.NewSectionReader(f, p+recordHeaderSize, int64(h.Length))); err != nil {
		return false, fmt.Errorf("read at byte %d: %w", p, err)
	}
	return crc.Sum32() == h.CRC, nil
}
