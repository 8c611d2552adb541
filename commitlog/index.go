package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
)

// indexEntry maps a record offset to the byte position of that record in
// its segment.
type indexEntry struct {
	Offset uint64
	Pos    int64
}

// sparseIndex holds an entry for a segment's first record and then for the
// first record at least spacing bytes after the previous entry.
type sparseIndex struct {
	entries []indexEntry
}

// note records the record at pos if it is due an entry.
func (x *sparseIndex) note(off uint64, pos, spacing int64) {
	if n := len(x.entries); n == 0 || pos-x.entries[n-1].Pos >= spacing {
		x.entries = append(x.entries, indexEntry{off, pos})
	}
}

// lookup returns the last entry at or before off; ok is false if off is
// below the first entry (or there is none).
func lookup(entries []indexEntry, off uint64) (indexEntry, bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Offset > off })
	if i == 0 {
		return indexEntry{}, false
	}
	return entries[i-1], true
}

func encodeIndex(base uint64, entries []indexEntry) []byte {
	b := make([]byte, 0, indexHeaderSize+len(entries)*indexEntrySize)
	b = binary.BigEndian.AppendUint32(b, indexMagic)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint16(b, 0) // flags
	b = binary.BigEndian.AppendUint64(b, base)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	b = binary.BigEndian.AppendUint32(b, 0) // reserved
	for _, e := range entries {
		b = binary.BigEndian.AppendUint64(b, e.Offset)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Pos))
	}
	return b
}

// parseIndex decodes an index file for the segment with this base and size
// and checks that it can describe it: header, whole entries, the first
// entry at the first record, offsets and positions strictly increasing,
// positions inside the segment. It cannot check that entries point at
// record boundaries; callers verify the entries they use.
func parseIndex(b []byte, base uint64, segSize int64) ([]indexEntry, error) {
	if len(b) < indexHeaderSize {
		return nil, errors.New("short index header")
	}
	if m := binary.BigEndian.Uint32(b); m != indexMagic {
		return nil, fmt.Errorf("bad index magic %#08x", m)
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return nil, errors.New("index header checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != formatVersion {
		return nil, fmt.Errorf("unsupported index version %d", v)
	}
	if got := binary.BigEndian.Uint64(b[8:]); got != base {
		return nil, fmt.Errorf("index base %d, segment base %d", got, base)
	}
	body := b[indexHeaderSize:]
	if len(body)%indexEntrySize != 0 {
		return nil, fmt.Errorf("index body of %d bytes is not whole entries", len(body))
	}
	entries := make([]indexEntry, 0, len(body)/indexEntrySize)
	for i := 0; i < len(body); i += indexEntrySize {
		e := indexEntry{binary.BigEndian.Uint64(body[i:]), int64(binary.BigEndian.Uint64(body[i+8:]))}
		switch {
		case len(entries) == 0 && (e.Offset != base || e.Pos != segmentHeaderSize):
			return nil, fmt.Errorf("first index entry %d@%d, want %d@%d", e.Offset, e.Pos, base, segmentHeaderSize)
		case len(entries) > 0 && (e.Offset <= entries[len(entries)-1].Offset || e.Pos <= entries[len(entries)-1].Pos):
			return nil, fmt.Errorf("index entry %d not increasing", len(entries))
		case e.Pos < segmentHeaderSize || e.Pos+recordHeaderSize > segSize:
			return nil, fmt.Errorf("index entry %d position %d outside the segment", len(entries), e.Pos)
		}
		entries = append(entries, e)
	}
	return entries, nil
}
