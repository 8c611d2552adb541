package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

var (
	// ErrClosed is returned by every call on a closed Client, Publisher or
	// Subscription.
	ErrClosed = errors.New("felix: closed")
	// ErrDisconnected is matched (errors.Is) by every *ConnectionError:
	// the connection or stream carrying a request went away.
	ErrDisconnected = errors.New("felix: disconnected")
	// ErrUnsupported: the broker did not advertise a capability the call
	// needs (e.g. FromOffset without EVENT_BATCH_OFFSETS).
	ErrUnsupported = errors.New("felix: not supported by the broker")
	// ErrQueueFull: a Publisher's queue stayed full until the context ended.
	ErrQueueFull = errors.New("felix: publisher queue full")
	// ErrTokenExpired is matched (errors.Is) by a *ConnectionError whose
	// stream the broker reset because the token that opened it expired
	// (see Options.TokenSource). A request (publish, cache request,
	// queue ack) that fails with it was not served, by a broker that
	// delivers its replies before that reset (RESET_STREAM_AT, as this
	// module's broker does; it serves nothing it reads after the
	// expiry): every request it served gets its reply first, so sending
	// the request again (with a fresh token) makes no duplicate. The
	// exception is a broker that could not write its replies within a
	// short grace after the expiry (the client was not reading them, or
	// a publish was held up by a subscriber under the block policy).
	// Against a broker without the extension a reply may be lost in the
	// reset, so the request may or may not have taken effect, as for any
	// ConnectionError. A Request (a service call) is the other exception:
	// the broker serves it by handing it to a responder, which may have
	// run it when the reset comes (its late answer is dropped), as after
	// ErrRequestTimeout.
	ErrTokenExpired = errors.New("felix: token expired")
	// ErrStorage is matched (errors.Is) by a *ServerError of a broker that
	// could not write to a durable stream's disk (full, or failing): a
	// publish that fails with it was not stored, so publishing it again
	// (once there is room) makes no duplicate; a queue ack or nack that
	// fails with it holds in the running broker but may be redelivered
	// after a restart. A *CacheError (or *ServerError) matches it when a
	// durable cache's log could not store a put, increment or delete: the
	// entry is unchanged.
	ErrStorage = errors.New("felix: broker storage write failed")
)

// NotPublishedError is a Publisher's Flush or Close error: events of
// its queue that failed, how many, and why.
type NotPublishedError struct {
	// Count is how many events were in the batches that failed. Err
	// says what is known of them: a broker's error (a *ServerError) means
	// it stored none of that batch; a *ConnectionError, that each may or
	// may not have been stored.
	Count int
	// Err is why: the first failure, or the context's error (with the
	// first failure) when Close was cut short.
	Err error
}

func (e *NotPublishedError) Error() string {
	return fmt.Sprintf("felix: %d events not published: %v", e.Count, e.Err)
}

func (e *NotPublishedError) Unwrap() error { return e.Err }

// ServerError is an error reported by the broker: an `error` frame, a
// `publish_error`, or a binary publish ack with error status. Message is the
// broker's text, e.g. "stream not found: tenant=t namespace=ns stream=s".
type ServerError struct {
	Message string
	// Code is the reply's code where it has one (queue_error:
	// "not_in_flight", "not_found", "forbidden", "invalid", "storage",
	// "internal");
	// empty otherwise.
	Code string
}

func (e *ServerError) Error() string { return "felix: server: " + e.Message }

// Is matches ErrStorage for a broker's storage failure.
func (e *ServerError) Is(target error) bool {
	return target == ErrStorage && (e.Code == wire.QueueCodeStorage || strings.HasPrefix(e.Message, wire.StorageWriteFailed))
}

// CursorError rejects a subscription whose start offset is out of range.
// Available is the oldest retained offset (too_old) or the tail (in_future).
type CursorError struct {
	Reason    wire.CursorErrorReason
	Requested uint64
	Available uint64
}

func (e *CursorError) Error() string {
	return fmt.Sprintf("felix: subscribe cursor %s: requested %d, available %d", e.Reason, e.Requested, e.Available)
}

// ConnectionError says that the QUIC connection or stream carrying a
// request failed before the request completed; the request may or may not
// have taken effect (but see ErrTokenExpired). It matches ErrDisconnected.
type ConnectionError struct {
	Op  string // what was under way, e.g. "publish", "subscribe"
	Err error  // the transport error
}

func (e *ConnectionError) Error() string {
	if code, ok := brokerReset(e.Err); ok {
		return fmt.Sprintf("felix: %s: stream reset by the broker: %s", e.Op, resetReason(code))
	}
	return fmt.Sprintf("felix: %s: connection lost: %v", e.Op, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// Is matches ErrDisconnected, and ErrTokenExpired when the broker reset
// the stream because its token expired.
func (e *ConnectionError) Is(target error) bool {
	if target == ErrTokenExpired {
		code, ok := brokerReset(e.Err)
		return ok && code == wire.ResetTokenExpired
	}
	return target == ErrDisconnected
}

// brokerReset reports the code of a stream reset the broker sent.
func brokerReset(err error) (uint64, bool) {
	var se *quic.StreamError
	if errors.As(err, &se) && se.Remote {
		return uint64(se.ErrorCode), true
	}
	return 0, false
}

// resetReason says what a broker's stream reset code means
// (docs/protocol.md, "Stream reset codes").
func resetReason(code uint64) string {
	switch code {
	case wire.ResetNoError:
		return "no error"
	case wire.ResetMalformed:
		return "malformed or oversized frame (code 1)"
	case wire.ResetClosing:
		return "broker closing (code 2)"
	case wire.ResetTokenExpired:
		return "token expired (code 3)"
	}
	return fmt.Sprintf("code %d", code)
}

// ProtocolError: the broker sent something felix-wire v1 does not allow at
// that point. The stream is abandoned.
type ProtocolError struct {
	Detail string
}

func (e *ProtocolError) Error() string { return "felix: protocol error: " + e.Detail }

// errNoReconnect is the cause of a ConnectionError when a connection was
// lost and ReconnectPolicy.Disabled is set.
var errNoReconnect = errors.New("connection lost and reconnect disabled")

// brokerClosedMessage is the error a broker that is shutting down
// answers a subscribe or queue join with when it reads one after its
// engine has closed (broker.ErrClosed): its connections stay open while
// it drains, and a stream it accepted just before the drain began is
// still served.
const brokerClosedMessage = "broker closed"

// errBrokerClosed: the broker answered "broker closed" (see
// brokerClosedMessage).
var errBrokerClosed = errors.New("the broker is shutting down (it answered \"" + brokerClosedMessage + "\")")

// refusal is the error for an error reply (msg) to a subscribe, queue join
// or serve: a *ServerError, the broker's refusal, except for the
// shutdown's "broker closed", which says the broker is going away, as a
// lost connection does: a *ConnectionError, so that a subscription,
// Consume or a Service tries again (on the restarted broker) instead of
// ending.
func refusal(op, msg string) error {
	if msg == brokerClosedMessage {
		return &ConnectionError{Op: op, Err: errBrokerClosed}
	}
	return &ServerError{Message: msg}
}
