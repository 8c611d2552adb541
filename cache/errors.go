package cache

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/felixmq/felix/commitlog"
)

// Sentinel errors; the typed errors below wrap them, so errors.Is works on
// either.
var (
	// ErrNotFound: no cache is registered under the scope.
	ErrNotFound = errors.New("cache scope not found")
	// ErrTooLarge: the entry can never fit in the cache's MaxBytes (or
	// the Store's MaxTotalBytes); a *BudgetFullError matches it too.
	ErrTooLarge = errors.New("cache entry too large")
	// ErrBudgetFull: a write the Store's memory budget
	// (StoreOptions.MaxTotalBytes) refused when no entry of any cache
	// could be evicted for it (a *BudgetFullError).
	ErrBudgetFull = errors.New("cache memory budget full")
	// ErrConditionFailed: a Put's IfAbsent or IfVersion did not hold.
	ErrConditionFailed = errors.New("cache condition failed")
	// ErrConfigConflict: Create on an existing scope with another Config.
	ErrConfigConflict = errors.New("cache config conflict")
	// ErrInvalidScope: a scope with an empty part.
	ErrInvalidScope = errors.New("invalid cache scope")
	// ErrInvalidConfig: a Config with a negative field.
	ErrInvalidConfig = errors.New("invalid cache config")
	// ErrDeleted: the cache was removed from its Store.
	ErrDeleted = errors.New("cache deleted")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("cache store closed")
	// ErrStorage matches a write of a durable cache whose log could not
	// store it (a *StorageError). Its text is the wire's
	// StorageWriteFailed, as for streams.
	ErrStorage = errors.New("storage write failed")
	// ErrDurable: Replace or Delete of a durable cache, which only its
	// declaration (and the files of its log) define.
	ErrDurable = errors.New("cache is durable")
	// ErrCompacting: Compact while a compaction of the cache runs.
	ErrCompacting = errors.New("cache log compaction already running")
	// ErrNotInteger: Incr on a value that is not the decimal text of a
	// signed 64-bit integer (a *NotIntegerError).
	ErrNotInteger = errors.New("cache value is not an integer or out of range")
	// ErrOverflow: Incr whose result would not fit in an int64 (a
	// *OverflowError).
	ErrOverflow = errors.New("cache increment or decrement would overflow")
	// ErrInvalidTTL: Expire with a TTL that is not positive (a *TTLError).
	ErrInvalidTTL = errors.New("invalid cache TTL")
)

// StorageError is a write of a durable cache that its log did not store
// (a full disk: a *commitlog.WriteError; a closed or failed log) or, under
// the SyncAlways policy, could not fsync. A put or delete failing so left
// the entry in memory as it was, unless the fsync failed (the record was
// written, its durability is unknown). It matches ErrStorage and the log's
// error. Its message names the cache, the key and the OS's reason, not the
// server's files.
type StorageError struct {
	Scope Scope
	Op    string // put, incr, expire, delete, evict, compact, flush
	Key   string
	Err   error
}

func (e *StorageError) Error() string {
	reason := e.Err.Error()
	if we, ok := errors.AsType[*commitlog.WriteError](e.Err); ok {
		reason = we.Reason()
	}
	if e.Key == "" {
		return fmt.Sprintf("%s, cache %s not stored: cache %s: %s", ErrStorage, e.Op, e.Scope, reason)
	}
	return fmt.Sprintf("%s, cache %s not stored: cache %s key %s: %s", ErrStorage, e.Op, e.Scope, quoteKey(e.Key), reason)
}

// Unwrap returns ErrStorage and the log's error.
func (e *StorageError) Unwrap() []error { return []error{ErrStorage, e.Err} }

// DurableError refuses Replace or Delete of a durable cache.
type DurableError struct {
	Scope Scope
	Op    string
}

func (e *DurableError) Error() string {
	return fmt.Sprintf("cache %s is durable: %s refused (Resize or DeleteDurable)", e.Scope, e.Op)
}

// Unwrap returns ErrDurable.
func (e *DurableError) Unwrap() error { return ErrDurable }

// NotFoundError reports an unknown scope. Its message is the reference
// broker's, so the server can send it in an error frame as is.
type NotFoundError struct{ Scope Scope }

func (e *NotFoundError) Error() string { return "cache scope not found: " + e.Scope.String() }

// Unwrap returns ErrNotFound.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// TooLargeError refuses an entry whose accounted size exceeds the cache's
// MaxBytes.
type TooLargeError struct {
	Size     int64 // accounted size: len(key) + len(value) + EntryOverhead
	MaxBytes int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("cache entry too large: %d bytes exceeds capacity %d", e.Size, e.MaxBytes)
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// BudgetFullError refuses a write that would take the Store's caches
// over their memory budget (StoreOptions.MaxTotalBytes) when no entry
// could be evicted to make room: every other byte belongs to durable
// caches whose logs refused the eviction records (a full disk), or to the
// key being written. Cause is the last such refusal, for the server's
// log: the message does not quote it, since it names another cache
// (perhaps another tenant's) and its key. It matches ErrBudgetFull and
// ErrTooLarge (the entry does not fit now), not the durable cache's
// ErrStorage: the writer's own cache stored nothing wrongly.
type BudgetFullError struct {
	Scope Scope // the cache written
	Key   string
	Limit int64 // MaxTotalBytes
	Cause error
}

func (e *BudgetFullError) Error() string {
	return fmt.Sprintf("%s (%d bytes, all caches together): cache %s key %s not written: "+
		"no entry could be evicted (the others are the key's own or durable caches' that cannot log an eviction)",
		ErrBudgetFull, e.Limit, e.Scope, quoteKey(e.Key))
}

// Unwrap returns ErrBudgetFull and ErrTooLarge.
func (e *BudgetFullError) Unwrap() []error { return []error{ErrBudgetFull, ErrTooLarge} }

// ConditionError reports a failed IfAbsent or IfVersion condition. Current
// is the key's version when the condition was checked, 0 if it did not
// exist (or had expired).
type ConditionError struct {
	Key     string
	Current uint64
}

func (e *ConditionError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("cache condition failed: key %s does not exist", quoteKey(e.Key))
	}
	return fmt.Sprintf("cache condition failed: key %s is at version %d", quoteKey(e.Key), e.Current)
}

// maxQuotedKey bounds how much of a key an error message quotes.
const maxQuotedKey = 64

// quoteKey quotes key for an error message, cut to its first maxQuotedKey
// bytes (on a rune boundary) with its length: a message is sent back in a
// reply frame, and a key may be nearly as long as a frame, twice as long
// once quoted and twice again once escaped as JSON.
func quoteKey(key string) string {
	if len(key) <= maxQuotedKey {
		return strconv.Quote(key)
	}
	cut := maxQuotedKey
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", key[:cut], len(key))
}

// Unwrap returns ErrConditionFailed.
func (e *ConditionError) Unwrap() error { return ErrConditionFailed }

// ConfigConflictError reports Create on a registered scope with a Config
// that differs (after defaults) from the existing cache's.
type ConfigConflictError struct {
	Scope               Scope
	Existing, Requested Config
}

func (e *ConfigConflictError) Error() string {
	return fmt.Sprintf("cache %s exists with config %+v, requested %+v", e.Scope, e.Existing, e.Requested)
}

// Unwrap returns ErrConfigConflict.
func (e *ConfigConflictError) Unwrap() error { return ErrConfigConflict }

// NotIntegerError refuses Incr on a key whose value is not the canonical
// decimal text of an int64 ("42", "-7"; not "+1", "007", " 1" or "1.5"),
// as Redis refuses INCR. The entry is unchanged.
type NotIntegerError struct{ Key string }

func (e *NotIntegerError) Error() string {
	return fmt.Sprintf("%s: key %s", ErrNotInteger, quoteKey(e.Key))
}

// Unwrap returns ErrNotInteger.
func (e *NotIntegerError) Unwrap() error { return ErrNotInteger }

// OverflowError refuses Incr whose result would leave the int64 range, as
// Redis refuses INCRBY. The entry is unchanged.
type OverflowError struct {
	Key          string
	Value, Delta int64
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("%s: key %s holds %d, delta %d", ErrOverflow, quoteKey(e.Key), e.Value, e.Delta)
}

// Unwrap returns ErrOverflow.
func (e *OverflowError) Unwrap() error { return ErrOverflow }

// TTLError refuses Expire with a TTL that is not positive. Redis's EXPIRE
// deletes a key given one; Felix refuses it, so that a mistaken TTL never
// loses a key: Persist removes an expiry, Delete deletes.
type TTLError struct {
	Key string
	TTL time.Duration
}

func (e *TTLError) Error() string {
	return fmt.Sprintf("%s: key %s: %v is not positive (persist, ttl_ms 0, removes an expiry; delete deletes a key)",
		ErrInvalidTTL, quoteKey(e.Key), e.TTL)
}

// Unwrap returns ErrInvalidTTL.
func (e *TTLError) Unwrap() error { return ErrInvalidTTL }

// ScanKeyTooLargeError refuses a Scan page whose next key alone (with the
// cursor that repeats it), or with the empty key that opens the page
// before it (AfterEmptyKey), exceeds ScanOptions.MaxBytes: the page cannot
// hold it, and skipping it would break the scan's promise.
type ScanKeyTooLargeError struct {
	Key            string
	Size, MaxBytes int
	// AfterEmptyKey: Size counts the empty key, which opens the page and
	// cannot end it (its cursor would start the scan over).
	AfterEmptyKey bool
}

func (e *ScanKeyTooLargeError) Error() string {
	with := ""
	if e.AfterEmptyKey {
		with = " with the empty key before it"
	}
	return fmt.Sprintf("%s: key %s needs %d bytes in a scan page%s, over the page's limit of %d",
		ErrTooLarge, quoteKey(e.Key), e.Size, with, e.MaxBytes)
}

// Unwrap returns ErrTooLarge.
func (e *ScanKeyTooLargeError) Unwrap() error { return ErrTooLarge }
