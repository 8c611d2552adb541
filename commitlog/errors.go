package commitlog

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors. The typed errors below wrap them, so errors.Is works on
// either.
var (
	// ErrTooOld: the requested offset is below the oldest retained record.
	ErrTooOld = errors.New("commitlog: offset too old")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("commitlog: log closed")
	// ErrCorrupt: the files hold data that is not a valid log.
	ErrCorrupt = errors.New("commitlog: corrupt log")
	// ErrTooLarge: a payload exceeds Options.MaxRecordBytes.
	ErrTooLarge = errors.New("commitlog: record too large")
	// ErrOffsetMismatch: AppendAt was given records that do not start at
	// Next or are not contiguous.
	ErrOffsetMismatch = errors.New("commitlog: offset mismatch")
)

// TooOldError is returned by Read for an offset that retention (or the
// memory ring's bound) has already dropped.
type TooOldError struct {
	Requested uint64 // the offset asked for
	Oldest    uint64 // the oldest offset still retained
}

func (e *TooOldError) Error() string {
	return fmt.Sprintf("commitlog: offset %d too old (oldest retained %d)", e.Requested, e.Oldest)
}

func (e *TooOldError) Unwrap() error { return ErrTooOld }

// CorruptionError names the place where the files stop being a valid log.
// Position is a byte position in File (0 for a problem with the whole file).
type CorruptionError struct {
	File     string
	Position int64
	Reason   string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("commitlog: corrupt log: %s at byte %d: %s", e.File, e.Position, e.Reason)
}

func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// OffsetMismatchError is returned by AppendAt when the records do not
// continue the log.
type OffsetMismatchError struct {
	Want uint64 // the offset the log expects (Next, or the previous record's + 1)
	Got  uint64 // the offset given
}

func (e *OffsetMismatchError) Error() string {
	return fmt.Sprintf("commitlog: offset mismatch: got %d, want %d", e.Got, e.Want)
}

func (e *OffsetMismatchError) Unwrap() error { return ErrOffsetMismatch }

// WriteError is an append that could not be written (a full disk, a file
// over the process's size limit, an I/O error) and left the log as it
// was: no offsets were assigned and no partial record remains, so the log
// takes later appends, which succeed once the disk can write them. It
// unwraps to the OS error (errors.Is(err, syscall.ENOSPC)). An error the
// log cannot undo is not a WriteError: the log then refuses every write
// until it is reopened.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "commitlog: " + e.Err.Error() }

// Reason is the OS's reason alone ("no space left on device"), without
// the file's path: what a client may be told.
func (e *WriteError) Reason() string {
	if errno, ok := errors.AsType[syscall.Errno](e.Err); ok {
		return errno.Error()
	}
	return e.Err.Error()
}

func (e *WriteError) Unwrap() error { return e.Err }
