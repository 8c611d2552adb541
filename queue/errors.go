package queue

import (
	"errors"
	"fmt"

	"github.com/felixmq/felix/commitlog"
)

// Sentinel errors. The typed errors below wrap them, so errors.Is works on
// either.
var (
	// ErrClosed: the group is closed.
	ErrClosed = errors.New("queue: group closed")
	// ErrMemberLeft: the member has left the group.
	ErrMemberLeft = errors.New("queue: member left the group")
	// ErrMemberExists: Join was given the id of a live member.
	ErrMemberExists = errors.New("queue: member id already in use")
	// ErrConcurrentNext: Next was called on a member while another Next
	// call on it was still running.
	ErrConcurrentNext = errors.New("queue: concurrent Next on one member")
	// ErrNotInFlight: Ack or Nack named an offset not in flight for the
	// member.
	ErrNotInFlight = errors.New("queue: offset not in flight")
	// ErrCorruptState: the state log holds a record that is not valid
	// group state.
	ErrCorruptState = errors.New("queue: corrupt group state")
	// ErrDeadLetterDropped: returned (or wrapped) by a DeadLetterFunc
	// that will never keep the dead letter (the dead-letter stream does
	// not exist): the record is done all the same, counted in
	// Stats.DeadLettered and Stats.DeadLettersDropped, not retried.
	ErrDeadLetterDropped = errors.New("queue: dead letter dropped")
)

// NotInFlightError is returned by Ack and Nack for offsets that are not in
// flight for the member: never delivered, already acked (a second ack of
// the same offset is this error too), nacked, taken back after an ack
// timeout (and perhaps redelivered to another member), or delivered to
// another member. The other offsets of the same Ack call are acked.
type NotInFlightError struct {
	Group, Member string
	Offsets       []uint64
}

func (e *NotInFlightError) Error() string {
	return fmt.Sprintf("queue: group %q member %q: offsets %v not in flight for this member", e.Group, e.Member, e.Offsets)
}

func (e *NotInFlightError) Unwrap() error { return ErrNotInFlight }

// CorruptStateError names the state-log record that could not be decoded
// or applied.
type CorruptStateError struct {
	Offset uint64 // offset of the record in the state log
	Reason string
}

func (e *CorruptStateError) Error() string {
	return fmt.Sprintf("queue: corrupt group state: state log record %d: %s", e.Offset, e.Reason)
}

func (e *CorruptStateError) Unwrap() error { return ErrCorruptState }

// StateWriteError is a failed write of a group's durable state (an ack, a
// nack, attempt counts, a snapshot; e.g. a full disk). The change holds in
// memory but is not durable until a later state write (a snapshot) carries
// it: after a restart before then, an acked record is delivered again. Its
// message names the group
// and, for a log that could not write, the OS's reason without the server's
// file paths (it is sent to consumers); it unwraps to the log's error.
type StateWriteError struct {
	Group string
	What  string // "state" or "state snapshot"
	Err   error
}

func (e *StateWriteError) Error() string {
	reason := e.Err.Error()
	if we, ok := errors.AsType[*commitlog.WriteError](e.Err); ok {
		reason = "storage write failed: " + we.Reason()
	}
	return fmt.Sprintf("queue: group %q: write %s: %s", e.Group, e.What, reason)
}

func (e *StateWriteError) Unwrap() error { return e.Err }
