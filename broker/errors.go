package broker

import (
	"errors"
	"fmt"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// Sentinel errors; the typed errors below wrap them.
var (
	ErrStreamNotFound    = errors.New("stream not found")
	ErrTenantNotFound    = errors.New("tenant not found")
	ErrNamespaceNotFound = errors.New("namespace not found")
	ErrStreamDeleted     = errors.New("stream deleted")
	ErrClosed            = errors.New("broker closed")
	ErrSubscriptionEnded = errors.New("subscription ended")
	ErrInvalidName       = errors.New("invalid name")
	ErrStreamExists      = errors.New("stream already exists")
	ErrTooManyStreams    = errors.New("too many streams")
	// ErrStoredNotDelivered matches a Publish error returned after the
	// events were added to the stream: they have offsets (and are in the
	// log of a durable stream), but not every subscription took them, for
	// the error's other reason (ctx ended while a block-policy subscriber
	// was full, or the stream ended). Publishing them again would store
	// them twice. The broker's close does not fail a publish to a durable
	// stream whose records are in its log: that publish succeeds.
	ErrStoredNotDelivered = errors.New("stored, not delivered to every subscription")
	// ErrStorage matches a Publish error of a log-backed stream whose log
	// could not write the events (a *StorageError: a full disk, a file
	// too large, an I/O error). Nothing of the publish was stored and the
	// stream goes on: publishing again is safe, and succeeds once the log
	// can write.
	ErrStorage = errors.New(wire.StorageWriteFailed)
)

// storedError is a Publish error after the events were stored. Its message
// is its cause's; it matches both the cause and ErrStoredNotDelivered.
type storedError struct{ err error }

func (e *storedError) Error() string   { return e.err.Error() }
func (e *storedError) Unwrap() []error { return []error{e.err, ErrStoredNotDelivered} }

// stored marks err (if any) as coming after the events were stored.
func stored(err error) error {
	if err == nil {
		return nil
	}
	return &storedError{err}
}

// StorageError is a Publish error of a log-backed stream whose log could
// not write the events and left itself as it was (a
// *commitlog.WriteError), or a Purge error. It matches ErrStorage and the
// log's error (so errors.Is(err, syscall.ENOSPC) works). Its message,
// sent to clients, names the stream and the OS's reason, not the server's
// files.
type StorageError struct {
	Key StreamKey
	// Outcome says what did not happen; "" is "publish not stored".
	Outcome string
	Err     error
}

func (e *StorageError) Error() string {
	reason := e.Err.Error()
	if we, ok := errors.AsType[*commitlog.WriteError](e.Err); ok {
		reason = we.Reason()
	}
	outcome := e.Outcome
	if outcome == "" {
		outcome = "publish not stored"
	}
	return fmt.Sprintf("%s, %s: stream %s: %s", ErrStorage, outcome, e.Key, reason)
}

func (e *StorageError) Unwrap() []error { return []error{ErrStorage, e.Err} }

// StreamKey names a stream.
type StreamKey struct{ Tenant, Namespace, Stream string }

func (k StreamKey) String() string { return k.Tenant + "/" + k.Namespace + "/" + k.Stream }

// NotFoundError reports an unknown stream. Its message is the reference
// broker's, so the server can send it as is.
type NotFoundError struct{ Key StreamKey }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("stream not found: tenant=%s namespace=%s stream=%s", e.Key.Tenant, e.Key.Namespace, e.Key.Stream)
}

func (e *NotFoundError) Unwrap() error { return ErrStreamNotFound }

// CursorError rejects a subscription start outside the retained range.
// Available is the oldest retained offset (TooOld) or the tail (in future).
type CursorError struct {
	TooOld    bool
	Requested uint64
	Available uint64
}

func (e *CursorError) Error() string {
	if e.TooOld {
		return fmt.Sprintf("cursor too old: requested %d, oldest retained %d", e.Requested, e.Available)
	}
	return fmt.Sprintf("cursor in future: requested %d, tail %d", e.Requested, e.Available)
}

// StartTimeError is a subscription start by time (wire.StartTime) whose
// record the stream's log could not look up (a read error, a damaged
// segment). The subscription is not made.
type StartTimeError struct {
	Key    StreamKey
	TimeMs uint64 // the time asked for, unix milliseconds
	Err    error
}

func (e *StartTimeError) Error() string {
	return fmt.Sprintf("subscribe to %s from time %d (unix ms): %v", e.Key, e.TimeMs, e.Err)
}

func (e *StartTimeError) Unwrap() error { return e.Err }
