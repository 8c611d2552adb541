package controlplane

import (
	"errors"
	"fmt"
)

// Sentinel errors; the typed errors below wrap them, so errors.Is works on
// either.
var (
	// ErrNotFound: the object (or its parent) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: an object with that key exists.
	ErrExists = errors.New("already exists")
	// ErrValidation: a request field is invalid.
	ErrValidation = errors.New("validation error")
	// ErrResyncRequired: the change feed no longer holds the requested
	// position; the reader must take a snapshot again.
	ErrResyncRequired = errors.New("resync required")
	// ErrUnauthorized: no usable credential (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: a credential that does not grant the request (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrLimit: the store is full (StoreOptions.MaxObjectBytes).
	ErrLimit = errors.New("control plane store full")
	// ErrTooLarge: a request body over Options.MaxBodyBytes (HTTP 413).
	ErrTooLarge = errors.New("request body too large")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("control plane store closed")
)

// Object kinds, as they appear in Change.Kind and in errors.
const (
	ObjectTenant    = "tenant"
	ObjectNamespace = "namespace"
	ObjectStream    = "stream"
	ObjectCache     = "cache"
)

// NotFoundError names the missing object.
type NotFoundError struct {
	Kind string // ObjectTenant, ObjectNamespace, ObjectStream or ObjectCache
	Key  string // "tenant[/namespace[/name]]"
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %s not found", e.Kind, e.Key) }

// Unwrap returns ErrNotFound.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// ExistsError names the object that already exists.
type ExistsError struct {
	Kind string
	Key  string
}

func (e *ExistsError) Error() string { return fmt.Sprintf("%s %s already exists", e.Kind, e.Key) }

// Unwrap returns ErrExists.
func (e *ExistsError) Unwrap() error { return ErrExists }

// ValidationError names the invalid field.
type ValidationError struct {
	Field   string // JSON name, dotted for nested fields ("retention.max_age_seconds")
	Message string

	reason string // for a refused name: the broker's words, without the advice
}

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Message) }

// Unwrap returns ErrValidation.
func (e *ValidationError) Unwrap() error { return ErrValidation }

// LimitError refuses a create or update that would take the objects past
// StoreOptions.MaxObjectBytes.
type LimitError struct {
	Have, Want, Limit int64 // the objects' JSON bytes now, with the change, and the bound
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("control plane store full: its objects would take %d bytes of JSON, over the limit of %d (now %d): delete objects (or raise StoreOptions.MaxObjectBytes, keeping snapshots readable by followers)", e.Want, e.Limit, e.Have)
}

// Unwrap returns ErrLimit.
func (e *LimitError) Unwrap() error { return ErrLimit }

// TooLargeError refuses a request body over Options.MaxBodyBytes.
type TooLargeError struct {
	Limit int64 // Options.MaxBodyBytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("request body larger than the limit of %d bytes", e.Limit)
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// ResyncError refuses a change-feed read from a position the feed no longer
// holds (older than the oldest retained change, or past the head, as after
// the store was replaced).
type ResyncError struct {
	Since  uint64 // the position asked for
	Oldest uint64 // the oldest retained seq
	Next   uint64 // the seq the next change will get
}

func (e *ResyncError) Error() string {
	return fmt.Sprintf("changes since %d are not available (retained %d..%d): take a new snapshot", e.Since, e.Oldest, e.Next)
}

// Unwrap returns ErrResyncRequired.
func (e *ResyncError) Unwrap() error { return ErrResyncRequired }

// APIError is an error body returned by a control plane over HTTP.
type APIError struct {
	Status  int    // HTTP status
	Code    string // "not_found", "resync_required", ...
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("control plane: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap maps the error code to the package's sentinel errors.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case codeResync:
		return ErrResyncRequired
	case codeNotFound:
		return ErrNotFound
	case codeExists, codeConflict:
		return ErrExists
	case codeLimit:
		return ErrLimit
	case codeValidation:
		return ErrValidation
	case codeUnauthorized:
		return ErrUnauthorized
	case codeForbidden:
		return ErrForbidden
	case codeTooLarge:
		return ErrTooLarge
	}
	return nil
}
