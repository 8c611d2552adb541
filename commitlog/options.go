package commitlog

import (
	"fmt"
	"log/slog"
	"time"
)

// SyncPolicy says when appended records are fsynced.
type SyncPolicy int

const (
	// SyncInterval (the default) fsyncs in the background one
	// Options.SyncInterval after an append (covering every append of the
	// interval; a log with nothing new does not wake). Append returns once the records are written to
	// the OS: a process crash loses nothing, a machine crash loses at most
	// the records appended in the last interval (plus one fsync's time).
	SyncInterval SyncPolicy = iota
	// SyncAlways fsyncs before Append returns. Concurrent appends share
	// fsyncs (group commit). Nothing acknowledged is lost.
	SyncAlways
	// SyncNever leaves flushing to the OS (and to segment rolls and Close).
	// A machine crash loses whatever the OS had not written back, which
	// can be tens of seconds of records.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncInterval:
		return "interval"
	case SyncAlways:
		return "always"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// ParseSyncPolicy accepts always, interval or never.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown sync policy %q (want always, interval or never)", s)
}

// Defaults of Options.
const (
	DefaultSyncInterval      = 100 * time.Millisecond
	DefaultSegmentBytes      = 64 << 20
	DefaultIndexSpacingBytes = 4096
	DefaultMaxRecordBytes    = 16 << 20
	DefaultRetentionInterval = time.Minute
	minSegmentBytes          = segmentHeaderSize + recordHeaderSize
)

// Options configure a DiskLog. The zero value is valid: every field
// documents its default.
type Options struct {
	// Sync is the fsync policy. Default SyncInterval.
	Sync SyncPolicy
	// SyncInterval is the fsync period under SyncInterval. Default 100ms.
	// It is the machine-crash loss window: records appended in the last
	// interval may be lost.
	SyncInterval time.Duration
	// SegmentBytes is the size at which the active segment is sealed and a
	// new one started: an append that would take the segment past it goes
	// to a new segment (a batch larger than a segment gets one of its
	// own). Default 64 MiB; at least 56 bytes.
	SegmentBytes int64
	// RollInBackground lets the append that would take the active segment
	// past SegmentBytes write into it anyway, and seals the segment in
	// the background: a goroutine fsyncs it without the write lock, then
	// rolls (the residue fsynced, the new segment made, as any roll). So
	// no append waits for the fsync of the full segment; appends go on
	// into it meanwhile, up to twice SegmentBytes, where an append rolls
	// as without it. On disk nothing changes: a segment is complete on
	// disk before the next one exists. Segments may end up to twice
	// SegmentBytes. Default false: the append that would pass
	// SegmentBytes rolls first, and waits for the seal.
	RollInBackground bool
	// IndexSpacingBytes is the distance between sparse index entries, in
	// segment bytes. A read scans at most about this much to find its
	// first record. Default 4096.
	IndexSpacingBytes int64
	// MaxRecordBytes is the largest payload Append accepts. Default 16 MiB;
	// at most MaxRecordLimit (1 GiB).
	MaxRecordBytes int
	// RetentionBytes deletes the oldest sealed segments while the log is
	// larger than this many bytes. 0 (default) = no size limit.
	RetentionBytes int64
	// RetentionAge deletes the oldest sealed segments whose newest record is
	// older than this. 0 (default) = no age limit.
	RetentionAge time.Duration
	// RetentionInterval is how often retention runs in the background when
	// RetentionBytes or RetentionAge is set. Default 1 minute; negative =
	// never in the background (call EnforceRetention).
	RetentionInterval time.Duration
	// VerifyOnOpen makes Open check every record of every segment, not only
	// the active segment and the tails of sealed ones. Default false.
	VerifyOnOpen bool
	// RepairTail makes Open truncate the active segment at its first bad
	// record even when valid records follow it (they are dropped), instead
	// of refusing with a *CorruptionError. For recovering after a machine
	// crash under SyncInterval or SyncNever, where the OS may have written
	// back later blocks of unsynced data and not earlier ones. Default false.
	RepairTail bool
	// Clock gives record timestamps and the time retention ages are
	// measured against. Default time.Now.
	Clock func() time.Time
	// Logger receives recovery warnings and lifecycle messages. Default
	// slog.Default().
	Logger *slog.Logger
	// OnSync, when set, is called with the duration of every fsync of
	// records (the active segment's syncs and the sync that seals a
	// segment), from the goroutine that synced; it must be fast and safe
	// for concurrent use (e.g. a Prometheus histogram's Observe). Default
	// nil: not measured.
	OnSync func(time.Duration)
	// OnWrite, when set, is called after every write call that stored
	// records, with the records and bytes it wrote (several appends'
	// when they shared it: see DiskLog.AppendNoWait), from the writing
	// goroutine while it holds the log's write lock: it must be fast
	// (e.g. a histogram's Observe of the group size). Default nil.
	OnWrite func(records, bytes int)
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	switch o.Sync {
	case SyncInterval, SyncAlways, SyncNever:
	default:
		return o, fmt.Errorf("commitlog: unknown sync policy %d", int(o.Sync))
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	switch {
	case o.SegmentBytes == 0:
		o.SegmentBytes = DefaultSegmentBytes
	case o.SegmentBytes < minSegmentBytes:
		return o, fmt.Errorf("commitlog: SegmentBytes %d below the minimum %d", o.SegmentBytes, minSegmentBytes)
	}
	if o.IndexSpacingBytes <= 0 {
		o.IndexSpacingBytes = DefaultIndexSpacingBytes
	}
	switch {
	case o.MaxRecordBytes <= 0:
		o.MaxRecordBytes = DefaultMaxRecordBytes
	case o.MaxRecordBytes > MaxRecordLimit:
		return o, fmt.Errorf("commitlog: MaxRecordBytes %d above the format limit %d", o.MaxRecordBytes, MaxRecordLimit)
	}
	if o.RetentionBytes < 0 || o.RetentionAge < 0 {
		return o, fmt.Errorf("commitlog: negative retention")
	}
	if o.RetentionInterval == 0 {
		o.RetentionInterval = DefaultRetentionInterval
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// lossWindow describes what a machine crash can lose under o's policy.
func (o Options) lossWindow() string {
	switch o.Sync {
	case SyncAlways:
		return "none: appends return after fsync"
	case SyncInterval:
		return fmt.Sprintf("records appended in the last %v", o.SyncInterval)
	}
	return "whatever the OS has not written back"
}
