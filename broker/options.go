package broker

import (
	"fmt"
	"log/slog"
	"time"
)

// QueuePolicy says what a full subscriber queue does with a new frame.
type QueuePolicy uint8

// Queue policies.
const (
	// DropNew discards the new frame (the default): the subscriber misses the
	// newest events, the publisher never waits.
	DropNew QueuePolicy = iota
	// DropOld discards the oldest queued frame to make room: the subscriber
	// always has the newest events, the publisher never waits.
	DropOld
	// Block makes the publisher wait for room: lossless, but a slow
	// subscriber throttles every publisher of the stream.
	Block
)

func (p QueuePolicy) String() string {
	switch p {
	case DropNew:
		return "drop_new"
	case DropOld:
		return "drop_old"
	case Block:
		return "block"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParseQueuePolicy parses drop_new, drop_old or block.
func ParseQueuePolicy(s string) (QueuePolicy, error) {
	switch s {
	case "drop_new", "":
		return DropNew, nil
	case "drop_old":
		return DropOld, nil
	case "block":
		return Block, nil
	}
	return 0, fmt.Errorf("unknown queue policy %q (want drop_new, drop_old or block)", s)
}

// Options configure a Broker. The zero value is valid; each field documents
// its default.
type Options struct {
	// AutoCreateStreams creates a stream (and its tenant and namespace) on
	// first use. Default false: streams must be declared.
	AutoCreateStreams bool
	// QueueCapacity is the per-subscription queue bound, in frames.
	// Default 512.
	QueueCapacity int
	// QueueMaxBytes is the per-subscription queue bound, in bytes (of the
	// frames queued or being written; frames are shared, so this bounds
	// each subscription on its own). A frame that would go beyond it meets
	// the queue policy, as one beyond QueueCapacity does; a single frame
	// larger than the bound is still queued alone. Default 64 MiB.
	QueueMaxBytes int
	// QueuePolicy applies to subscriptions that do not choose one.
	// Default DropNew.
	QueuePolicy QueuePolicy
	// MaxEventsPerFrame splits a published batch into frames of at most this
	// many events. Default 64.
	MaxEventsPerFrame int
	// MaxBytesPerFrame splits a published batch into frames of at most this
	// many payload bytes (a single larger event gets a frame of its own).
	// Default 64 KiB.
	MaxBytesPerFrame int
	// WriteMaxBytes bounds how many bytes NextBatch coalesces into one
	// write. Default 64 KiB.
	WriteMaxBytes int
	// WriteMaxEvents bounds how many events NextBatch coalesces into one
	// write. Default 1024.
	WriteMaxEvents int
	// WriteMaxDelay is how long NextBatch waits for more frames after the
	// first before returning. Default 0: return as soon as the queue is
	// empty (lowest latency; batches still form under load).
	WriteMaxDelay time.Duration
	// RingCapacity bounds the per-stream replay ring, in events. Default
	// 1024. Negative disables the ring.
	RingCapacity int
	// RingMaxBytes bounds the replay ring's payload bytes. Default 64 MiB.
	RingMaxBytes int
	// MaxAutoCreatedStreams bounds the broker's streams as far as
	// AutoCreateStreams is concerned: a stream is auto-created only while
	// the broker has fewer streams than this (else ErrTooManyStreams), so
	// clients naming streams at will cannot grow the registry without
	// limit. Declared streams are never refused. Default 10000; negative
	// means no limit.
	MaxAutoCreatedStreams int
	// Logger receives storage errors (a stream failed by its log), and,
	// at most once every 10 s, the streams MaxAutoCreatedStreams
	// refuses. Default: none.
	Logger *slog.Logger
	// Clock stamps the events of in-memory streams as they are published
	// (once per publish call), for subscriptions that start at a time
	// (wire.StartTime). Log-backed streams are stamped by their log's
	// clock. Default time.Now.
	Clock func() time.Time
	// StorageGuard, when set, is asked before every publish to a durable
	// stream is appended: an error refuses the publish with a
	// *StorageError wrapping it, nothing of it stored (the broker's free
	// disk space floor, diskfree.Guard.Check). The server asks it before
	// writes to durable caches too (Broker.CheckStorage). Default: none.
	StorageGuard func() error
}

func (o Options) withDefaults() Options {
	if o.QueueCapacity <= 0 {
		o.QueueCapacity = 512
	}
	if o.QueueMaxBytes <= 0 {
		o.QueueMaxBytes = 64 << 20
	}
	if o.MaxEventsPerFrame <= 0 {
		o.MaxEventsPerFrame = 64
	}
	if o.MaxBytesPerFrame <= 0 {
		o.MaxBytesPerFrame = 64 << 10
	}
	if o.WriteMaxBytes <= 0 {
		o.WriteMaxBytes = 64 << 10
	}
	if o.WriteMaxEvents <= 0 {
		o.WriteMaxEvents = 1024
	}
	if o.RingCapacity == 0 {
		o.RingCapacity = 1024
	}
	if o.MaxAutoCreatedStreams == 0 {
		o.MaxAutoCreatedStreams = 10000
	}
	if o.RingMaxBytes <= 0 {
		o.RingMaxBytes = 64 << 20
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}
