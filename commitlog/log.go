package commitlog

import (
	"context"
	"time"
)

// Record is one entry of a log.
type Record struct {
	Offset    uint64 // position in the log, from 0, contiguous
	Timestamp int64  // append time, unix microseconds (from the log's clock)
	Payload   []byte // the bytes appended; callers must not modify it
}

// Default read bounds, used when Read is given a bound ≤ 0.
const (
	DefaultReadRecords = 1000
	DefaultReadBytes   = 1 << 20
)

// Log is an append-only sequence of records with contiguous offsets.
// Implementations are safe for concurrent use.
type Log interface {
	// Append writes the payloads as consecutive records and returns the
	// offset of the first. It returns only after the records satisfy the
	// log's sync policy (SyncAlways: fsynced, concurrent appends sharing
	// one fsync; SyncInterval and SyncNever: written to the OS). ctx bounds
	// the wait; if it ends after the write, Append returns the first offset
	// with ctx's error and the records may or may not be durable. An empty
	// batch returns Next() and writes nothing. Payloads must not be
	// modified after Append: a log may keep them. A closed log returns
	// ErrClosed, also for an empty batch. A *WriteError (a full disk)
	// means nothing was stored and the log takes the next appends.
	Append(ctx context.Context, payloads [][]byte) (first uint64, err error)

	// AppendAt writes records at the offsets they carry, keeping their
	// timestamps: the first must equal Next() and the rest follow
	// contiguously, else it returns an *OffsetMismatchError and writes
	// nothing. It is how a replication follower applies a leader's
	// records. Durability and ctx are as for Append. A closed log returns
	// ErrClosed, whatever the offsets.
	AppendAt(ctx context.Context, records []Record) error

	// Read returns records from offset from: at most maxRecords and about
	// maxBytes of payload, but always at least one record if one exists at
	// from. A bound ≤ 0 means DefaultReadRecords / DefaultReadBytes.
	// from < Oldest() returns a *TooOldError; from ≥ Next() returns no
	// records and no error. Returned payloads must not be modified.
	Read(from uint64, maxRecords, maxBytes int) ([]Record, error)

	// Oldest is the first retained offset (== Next() when the log is empty).
	Oldest() uint64

	// Next is the offset the next appended record gets.
	Next() uint64

	// OffsetForTime returns the offset of the first record whose timestamp
	// is at or after t: Oldest() for a t older than every retained
	// record, Next() (the tail) when every retained record is older than
	// t. Timestamps need not increase (a clock stepped back): the record
	// is found by a binary search by timestamp and then a scan (see the
	// implementations), so a step back can make it an earlier record than
	// the first at or after t in log order, never a later one past a
	// record published after t that follows it. An empty log returns
	// Next(); a closed one ErrClosed.
	OffsetForTime(t time.Time) (uint64, error)

	// Wait blocks until Next() > after (the record at offset after exists),
	// ctx ends (ctx's error) or the log closes (ErrClosed).
	Wait(ctx context.Context, after uint64) error

	// Purge removes every record below the Next() it observes (the purge
	// point) and returns that offset, which is then Oldest(), and how many
	// records it removed (each counted by one purge only, however many
	// run at once; those retention removed first are not): the log is
	// empty unless appends followed. Offsets are not reused: Next() is
	// unchanged, and later appends continue from it. Appends concurrent
	// with Purge are either wholly below the purge point (and removed) or
	// wholly at or after it (and kept); none that starts after Purge
	// returns is removed. Reads in flight on the removed records finish
	// normally, as with retention; later reads below the new Oldest()
	// return a *TooOldError, and OffsetForTime on a log left empty
	// returns Next(). Wait is not woken: Next() does not move. A closed
	// log returns ErrClosed; a log that refuses writes after a failed
	// fsync returns that error. A durable log may leave part of the old
	// records in place when Purge returns an error or the process dies
	// during it (see the implementation); once Purge has returned the
	// purge point without error, the removal is durable.
	Purge() (first, removed uint64, err error)

	// Close releases the log. A durable log syncs what it has written first.
	Close() error
}
