package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// Clock tells the group the time: ack deadlines and redelivery delays are
// measured against it. Tests inject a fake one and drive time explicitly.
type Clock interface{ Now() time.Time }

// DeadLetterFunc receives a record that was delivered Options.MaxAttempts
// times without an ack: attempts is the number of deliveries (==
// MaxAttempts) and reason says why the last one ended, e.g. "max attempts
// (5) exceeded: ack timeout". It is called outside the group's lock, with
// the ctx of the Nack that ended the last attempt or a background ctx from
// Tick, either cancelled when the group closes (Group.Close waits for the
// call, and must not be called from it). A nil return removes the record
// from the group for good (it counts as done); an error matching
// ErrDeadLetterDropped does too, and counts the dead letter as dropped
// (Stats.DeadLettersDropped); any other error keeps it waiting and the
// call is retried by a later Tick (1 s after a round of calls that all
// failed, doubling to 30 s, until one succeeds) or after a restart.
type DeadLetterFunc func(ctx context.Context, rec commitlog.Record, attempts int, reason string) error

// Defaults of Options.
const (
	DefaultAckTimeout    = 30 * time.Second
	DefaultMaxAttempts   = 5
	DefaultBackoffMin    = time.Second
	DefaultBackoffMax    = 60 * time.Second
	DefaultPrefetch      = 64
	DefaultReadBatch     = 256
	DefaultSnapshotEvery = 1024
	// DefaultCloseDeadLetterWait is Options.CloseDeadLetterWait's default.
	DefaultCloseDeadLetterWait = 5 * time.Second
	// DefaultMaxInFlightBytes is Options.MaxInFlightBytes's default.
	DefaultMaxInFlightBytes = 64 << 20
)

// Options configure a Group. The zero value is valid: every field
// documents its default.
type Options struct {
	// AckTimeout: a delivery not acked (or nacked) this long after it was
	// handed out is taken back by Tick and redelivered. Default 30s.
	AckTimeout time.Duration
	// MaxAttempts is how many deliveries a record gets: when it would be
	// delivered for attempt MaxAttempts+1 it is dead-lettered instead.
	// Default 5; negative means no limit (never dead-letter).
	MaxAttempts int
	// BackoffMin is the delay before a record whose ack timed out is
	// redelivered: BackoffMin after the first delivery's timeout, doubling
	// with each attempt, at most BackoffMax. Default 1s.
	BackoffMin time.Duration
	// BackoffMax caps the timeout backoff. Default 60s; not below BackoffMin.
	BackoffMax time.Duration
	// DefaultPrefetch is a member's in-flight limit when Join is given a
	// prefetch ≤ 0. Default 64.
	DefaultPrefetch int
	// MaxInFlightBytes bounds the payload bytes a member holds in flight,
	// whatever its prefetch (which counts records): Next hands out no
	// record that would take the member past it, and waits for the
	// member's acks instead (counted in Stats.InFlightBytesLimited). A
	// record larger than the bound is still delivered to a member that
	// holds no bytes in flight, so it never waits forever. Default 64 MiB.
	MaxInFlightBytes int64
	// DeadLetter receives dead records. Default nil: they are dropped
	// (and counted in Stats.DeadLettered and Stats.DeadLettersDropped).
	DeadLetter DeadLetterFunc
	// CloseDeadLetterWait bounds how long Group.Close waits for DeadLetter
	// calls under way once it has cancelled their contexts. A call still
	// running then is abandoned: its record stays pending in the group's
	// final state (dead-lettered again after a restart) and is counted in
	// Stats.DeadLettersAbandoned. Default 5s.
	CloseDeadLetterWait time.Duration
	// StateLog, when set, makes the group's state durable: acks, dead
	// letters and delivery attempt counts are appended to it (format in
	// the package doc) and NewGroup rebuilds the group from it. One log per
	// group, used by nothing else; never apply retention to it. Its sync
	// policy decides what "durable" means for Ack (SyncAlways: fsynced).
	// Default nil: state lives in memory only and a new Group starts at
	// the stream's Oldest() (or StartAt).
	StateLog commitlog.Log
	// StartAt is the offset a new group starts at: one with no StateLog,
	// or whose StateLog holds no state yet. It is kept within the stream's
	// retained range: below Oldest() means Oldest(), above Next() means
	// Next(). Records below the start are not the group's: they are
	// neither delivered nor counted as lost or as lag. A group rebuilt
	// from its state ignores it. Default nil: Oldest(), every record the
	// stream holds.
	StartAt *uint64
	// SnapshotEvery: after this many state records since the last
	// snapshot, a snapshot of the whole group state is appended, so a
	// restart replays at most about this many records. Default 1024.
	SnapshotEvery int
	// Clock gives the time for ack deadlines and nack delays. Default the
	// real clock.
	Clock Clock
	// ReadBatch is how many records the group reads from the stream per
	// refill of its buffer of records not yet delivered. Default 256.
	ReadBatch int
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.AckTimeout < 0 || o.BackoffMin < 0 || o.BackoffMax < 0 || o.CloseDeadLetterWait < 0 {
		return o, fmt.Errorf("queue: negative duration in options")
	}
	if o.DefaultPrefetch < 0 || o.ReadBatch < 0 || o.SnapshotEvery < 0 || o.MaxInFlightBytes < 0 {
		return o, fmt.Errorf("queue: negative count in options")
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffMin)
	}
	if o.BackoffMax < o.BackoffMin {
		return o, fmt.Errorf("queue: BackoffMax %v below BackoffMin %v", o.BackoffMax, o.BackoffMin)
	}
	if o.DefaultPrefetch == 0 {
		o.DefaultPrefetch = DefaultPrefetch
	}
	if o.ReadBatch == 0 {
		o.ReadBatch = DefaultReadBatch
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.CloseDeadLetterWait == 0 {
		o.CloseDeadLetterWait = DefaultCloseDeadLetterWait
	}
	if o.MaxInFlightBytes == 0 {
		o.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o, nil
}

// backoff is the redelivery delay after the ack timeout of delivery number
// attempt (≥ 1): BackoffMin·2^(attempt-1), at most BackoffMax.
func (o *Options) backoff(attempt int) time.Duration {
	d := o.BackoffMin
	for i := 1; i < attempt && d < o.BackoffMax; i++ {
		if d > o.BackoffMax/2 { // doubling would pass BackoffMax (or overflow)
			return o.BackoffMax
		}
		d *= 2
	}
	return min(d, o.BackoffMax)
}

// exhausted reports whether a record delivered attempts times may not be
// delivered again.
func (o *Options) exhausted(attempts int) bool {
	return o.MaxAttempts > 0 && attempts >= o.MaxAttempts
}
