package wire

import (
	"encoding/binary"
	"fmt"
)

const (
	// Magic is the first four bytes of every frame: "FLX1".
	Magic uint32 = 0x464C5831
	// Version is the only protocol version this package speaks.
	Version uint16 = 1
	// HeaderSize is the size of the frame header in bytes.
	HeaderSize = 12
	// DefaultMaxFrameBytes bounds a frame payload when no limit is given
	// (16 MiB, as the reference broker and client).
	DefaultMaxFrameBytes = 16 << 20
)

// Header is a decoded frame header.
type Header struct {
	Version uint16
	Flags   uint16
	Length  uint32 // payload bytes
}

// Frame is one decoded frame. Payload aliases the reader's buffer (or the
// decoded input) and is only valid until the next read.
type Frame struct {
	Flags   uint16
	Payload []byte
}

// AppendHeader appends a frame header for a payload of length n with the
// given flags.
func AppendHeader(dst []byte, flags uint16, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, Magic)
	dst = binary.BigEndian.AppendUint16(dst, Version)
	dst = binary.BigEndian.AppendUint16(dst, flags)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendFrame appends a complete frame (header and payload).
func AppendFrame(dst []byte, flags uint16, payload []byte) []byte {
	dst = AppendHeader(dst, flags, len(payload))
	return append(dst, payload...)
}

// putLength rewrites the length field of a header that starts at dst[at:].
func putLength(dst []byte, at int) {
	binary.BigEndian.PutUint32(dst[at+8:], uint32(len(dst)-at-HeaderSize))
}

// ParseHeader validates a 12-byte header. It checks magic and version and
// the length against maxPayload (0 means DefaultMaxFrameBytes). Unknown flag
// bits are reported as ErrUnknownFlags together with the parsed header, so
// the caller can skip the payload and keep the stream in sync.
func ParseHeader(b []byte, maxPayload int) (Header, error) { return parseHeader(b, maxPayload, 0) }

// parseHeader is ParseHeader with the extension flags in allow counted as
// known (no error is built for them: frames of a negotiated extension
// arrive on hot paths).
func parseHeader(b []byte, maxPayload int, allow uint16) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, decodeErr("frame header", len(b), ErrTruncated, "")
	}
	if m := binary.BigEndian.Uint32(b); m != Magic {
		return Header{}, decodeErr("frame header", 0, ErrInvalidMagic, fmt.Sprintf("got %#08x", m))
	}
	h := Header{
		Version: binary.BigEndian.Uint16(b[4:]),
		Flags:   binary.BigEndian.Uint16(b[6:]),
		Length:  binary.BigEndian.Uint32(b[8:]),
	}
	if h.Version != Version {
		return h, decodeErr("frame header", 4, ErrUnsupportedVersion, fmt.Sprintf("got %d", h.Version))
	}
	if maxPayload <= 0 {
		maxPayload = DefaultMaxFrameBytes
	}
	if uint64(h.Length) > uint64(maxPayload) {
		return h, decodeErr("frame header", 8, ErrFrameTooLarge, fmt.Sprintf("length %d exceeds limit %d", h.Length, maxPayload))
	}
	if HasUnknownFlags(h.Flags &^ allow) {
		return h, decodeErr("frame header", 6, ErrUnknownFlags, fmt.Sprintf("flags %#04x", h.Flags))
	}
	return h, nil
}

// DecodeFrame decodes one frame from the start of b and returns it with the
// bytes that follow. Frame.Payload aliases b. On ErrUnknownFlags the frame
// and rest are still returned so the caller may skip it.
func DecodeFrame(b []byte, maxPayload int) (Frame, []byte, error) {
	h, err := ParseHeader(b, maxPayload)
	if err != nil && !isUnknownFlags(err) {
		return Frame{}, b, err
	}
	end := HeaderSize + int(h.Length)
	if len(b) < end {
		return Frame{}, b, decodeErr("frame", len(b), ErrTruncated, fmt.Sprintf("need %d bytes, have %d", end, len(b)))
	}
	return Frame{Flags: h.Flags, Payload: b[HeaderSize:end]}, b[end:], err
}
