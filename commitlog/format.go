package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk format constants. The package documentation describes the layout
// byte for byte; keep the two in step.
const (
	segmentMagic      = 0x46584C47 // "FXLG"
	indexMagic        = 0x46584958 // "FXIX"
	formatVersion     = 1
	segmentHeaderSize = 32
	indexHeaderSize   = 24
	indexEntrySize    = 16
	recordHeaderSize  = 24

	// MaxRecordLimit is the largest payload length the format accepts. A
	// length field above it is invalid however large the file is; it is
	// also the ceiling for Options.MaxRecordBytes.
	MaxRecordLimit = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons a record fails to decode. They are the Reason of the
// CorruptionError built from them.
var (
	errIncomplete = errors.New("incomplete record")
	errTooLarge   = errors.New("record length exceeds the format limit")
	errChecksum   = errors.New("record checksum mismatch")
)

// segmentHeader is the first segmentHeaderSize bytes of a segment file.
type segmentHeader struct {
	Base    uint64 // offset of the first record in the segment
	Created int64  // creation time, unix microseconds
}

func appendSegmentHeader(b []byte, h segmentHeader) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, segmentMagic)
	b = binary.BigEndian.AppendUint16(b, formatVersion)
	b = binary.BigEndian.AppendUint16(b, 0) // flags
	b = binary.BigEndian.AppendUint64(b, h.Base)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Created))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:start+24], castagnoli))
	return binary.BigEndian.AppendUint32(b, 0) // reserved
}

// parseSegmentHeader validates and decodes a segment header; b holds at
// least segmentHeaderSize bytes.
func parseSegmentHeader(b []byte) (segmentHeader, error) {
	if len(b) < segmentHeaderSize {
		return segmentHeader{}, fmt.Errorf("segment header: %d of %d bytes", len(b), segmentHeaderSize)
	}
	if m := binary.BigEndian.Uint32(b); m != segmentMagic {
		return segmentHeader{}, fmt.Errorf("segment header: bad magic %#08x", m)
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.BigEndian.Uint32(b[24:]) {
		return segmentHeader{}, errors.New("segment header: checksum mismatch")
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != formatVersion {
		return segmentHeader{}, fmt.Errorf("segment header: unsupported version %d", v)
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		return segmentHeader{}, fmt.Errorf("segment header: unknown flags %#04x", f)
	}
	return segmentHeader{
		Base:    binary.BigEndian.Uint64(b[8:]),
		Created: int64(binary.BigEndian.Uint64(b[16:])),
	}, nil
}

// recordHeader is the fixed part in front of every payload.
type recordHeader struct {
	Length    uint32
	Offset    uint64
	Timestamp int64
	CRC       uint32
}

// parseRecordHeader decodes b[:recordHeaderSize] without validating it.
func parseRecordHeader(b []byte) recordHeader {
	_ = b[recordHeaderSize-1]
	return recordHeader{
		Length:    binary.BigEndian.Uint32(b),
		Offset:    binary.BigEndian.Uint64(b[4:]),
		Timestamp: int64(binary.BigEndian.Uint64(b[12:])),
		CRC:       binary.BigEndian.Uint32(b[20:]),
	}
}

// recordCRC is the checksum stored in a record: CRC-32C over the first 20
// header bytes (length, offset, timestamp), then the payload.
func recordCRC(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr[:20], castagnoli), castagnoli, payload)
}

// encodedSize is the number of bytes a record with this payload takes.
func encodedSize(payloadLen int) int { return recordHeaderSize + payloadLen }

// appendRecord appends the encoding of one record to b.
func appendRecord(b []byte, offset uint64, ts int64, payload []byte) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.BigEndian.AppendUint64(b, offset)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = binary.BigEndian.AppendUint32(b, recordCRC(b[start:], payload))
	return append(b, payload...)
}

// decodeRecord decodes the record at the start of b. The returned payload
// aliases b; nothing is allocated. limit is the largest acceptable payload
// length. It returns the record and its encoded size, or errIncomplete (b
// ends inside the record), errTooLarge or errChecksum. It does not check
// the offset against any expectation.
func decodeRecord(b []byte, limit uint32) (Record, int, error) {
	if len(b) < recordHeaderSize {
		return Record{}, 0, errIncomplete
	}
	h := parseRecordHeader(b)
	if h.Length > limit {
		return Record{}, 0, errTooLarge
	}
	n := recordHeaderSize + int(h.Length)
	if n > len(b) {
		return Record{}, 0, errIncomplete
	}
	payload := b[recordHeaderSize:n:n]
	if recordCRC(b, payload) != h.CRC {
		return Record{}, 0, errChecksum
	}
	return Record{Offset: h.Offset, Timestamp: h.Timestamp, Payload: payload}, n, nil
}
