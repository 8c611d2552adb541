package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers classify with errors.Is.
var (
	// ErrInvalidMagic: the frame does not start with "FLX1". Fatal for the stream.
	ErrInvalidMagic = errors.New("invalid frame magic")
	// ErrUnsupportedVersion: the header version is not 1. Fatal for the stream.
	ErrUnsupportedVersion = errors.New("unsupported frame version")
	// ErrUnknownFlags: the header sets flag bits outside KnownFlags. The
	// Reader has consumed the payload, so the stream stays in sync.
	ErrUnknownFlags = errors.New("unsupported frame flags")
	// ErrFrameTooLarge: the header length exceeds the configured maximum.
	// Fatal for the stream; nothing is allocated for it.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrTruncated: the input ended inside a frame or inside a field.
	ErrTruncated = errors.New("truncated frame")
	// ErrCountTooLarge: a count cannot fit in the bytes that remain.
	ErrCountTooLarge = errors.New("count larger than remaining bytes")
	// ErrInvalidUTF8: a name (tenant, namespace, stream) is not UTF-8.
	ErrInvalidUTF8 = errors.New("invalid utf-8")
	// ErrInvalidAckMode: an acked publish carries an ack mode other than 1 or 2.
	ErrInvalidAckMode = errors.New("invalid ack mode")
	// ErrInvalidAckStatus: a publish ack carries a status other than 0 or 1.
	ErrInvalidAckStatus = errors.New("invalid ack status")
	// ErrUnknownCacheOp: a binary cache frame (FlagBinaryCache) carries an
	// op this side does not accept (unknown, or one only the other side sends).
	ErrUnknownCacheOp = errors.New("unknown binary cache op")
	// ErrUnknownOptions: a binary cache put sets option bits outside the
	// defined ones.
	ErrUnknownOptions = errors.New("unknown option bits")
	// ErrTrailingBytes: a binary body has bytes after its last field.
	ErrTrailingBytes = errors.New("trailing bytes after body")
	// ErrInvalidJSON: a JSON payload is not a valid message (syntax, unknown
	// type, missing or mistyped field).
	ErrInvalidJSON = errors.New("invalid json message")
	// ErrWrongFlags: a decoder was handed a frame whose flags select another
	// layout.
	ErrWrongFlags = errors.New("frame flags do not match layout")
	// ErrFieldTooLong: an encoder was given a value that its length prefix
	// cannot describe.
	ErrFieldTooLong = errors.New("field too long for its length prefix")
)

// DecodeError gives context to a decoding failure: what was being decoded,
// at which byte offset of the payload, and the sentinel cause.
type DecodeError struct {
	What   string // e.g. "publish batch", "frame header", "json message"
	Offset int    // byte offset within the frame payload (or header)
	Detail string // optional human detail
	Err    error  // one of the sentinel errors above
}

func (e *DecodeError) Error() string {
	s := fmt.Sprintf("decode %s at byte %d: %v", e.What, e.Offset, e.Err)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(what string, off int, err error, detail string) error {
	return &DecodeError{What: what, Offset: off, Err: err, Detail: detail}
}

// IsFatal reports whether a Reader error leaves the stream out of sync (the
// caller must tear the stream down). ErrUnknownFlags is not fatal: the frame
// body was consumed and the next frame can be read.
func IsFatal(err error) bool {
	return err != nil && !errors.Is(err, ErrUnknownFlags)
}
