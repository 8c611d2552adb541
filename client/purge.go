package client

import (
	"context"
	"fmt"
	"time"

	"github.com/felixmq/felix/wire"
)

// PurgeResult says what PurgeStream removed.
type PurgeResult struct {
	// Purged is the number of events removed (those the stream still
	// held: retention or an in-memory stream's replay ring may already
	// have dropped older ones).
	Purged uint64
	// Offset is the first offset the stream keeps: the offset of the next
	// event published. Offsets are not reused.
	Offset uint64
}

// PurgeStream removes every event namespace/stream holds, as `nats stream
// purge` or RabbitMQ's queue.purge (see docs/semantics.md, "Purging a
// stream"). Live subscriptions go on with the events published after it;
// a start by offset below Offset then gets a too-old *CursorError.
// It needs the stream.manage permission. The request goes over the
// client's control (cache) streams. A refusal is a *ServerError whose
// Code is "forbidden", "not_found" (an unknown stream: a purge never
// creates one) or "storage" (matching ErrStorage: the log could not be
// purged); a broker without the extension (capability wire.CapManage)
// gives ErrUnsupported without anything being sent. A purge that fails
// with a *ConnectionError may or may not have happened; purging again is
// harmless.
func (c *Client) PurgeStream(ctx context.Context, namespace, stream string) (PurgeResult, error) {
	if c.ServerFlags()&wire.CapManage == 0 {
		return PurgeResult{}, fmt.Errorf("felix: broker does not offer stream purge (capability %#04x): %w", wire.CapManage, ErrUnsupported)
	}
	reply, err := c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.StreamPurge{TenantID: c.opts.TenantID, Namespace: namespace, Stream: stream, RequestID: id}
	})
	if err != nil {
		return PurgeResult{}, err
	}
	v, ok := reply.(*wire.StreamPurged)
	if !ok {
		return PurgeResult{}, unexpected(reply, "stream_purge")
	}
	return PurgeResult{Purged: v.Purged, Offset: v.Offset}, nil
}

// Flush removes every entry of the cache (Redis FLUSHDB, for this one
// cache) and returns how many live entries it removed. Versions keep
// growing across it, so a compare-and-set with a version read before
// never matches a later entry. On a durable cache the flush is on disk
// when Flush returns. It needs the cache.manage permission and never
// creates a cache. A refusal is a *CacheError whose Code is "forbidden",
// "not_found", or "storage" (matching ErrStorage: a durable cache whose
// log failed during the flush; the entries were kept, unless the log had
// already been purged and only its closing record failed: flush again
// once the log works); a broker
// without the extension (capability wire.CapManage) gives ErrUnsupported
// without anything being sent.
func (k *Cache) Flush(ctx context.Context) (removed uint64, err error) {
	if k.c.ServerFlags()&wire.CapManage == 0 {
		return 0, fmt.Errorf("felix: broker does not offer cache flush (capability %#04x): %w", wire.CapManage, ErrUnsupported)
	}
	reply, err := k.c.cacheRequest(ctx, func(id uint64) wire.Message {
		return &wire.CacheFlush{TenantID: k.c.opts.TenantID, Namespace: k.namespace, Cache: k.name, RequestID: id}
	})
	if err != nil {
		return 0, err
	}
	v, ok := reply.(*wire.CacheFlushed)
	if !ok {
		return 0, unexpected(reply, "cache_flush")
	}
	return v.Removed, nil
}

// NewGroupFromLatest makes a consumer group that this join creates start
// at the stream's end: its members get only the records published from
// then on (JetStream's DeliverPolicy new), not the stream's history. A
// group that already exists (it had members, or kept state on disk)
// keeps its position; to move one, DeleteQueueGroup it and join again.
// Needs a broker that grants the management extension (wire.CapManage):
// Consumer fails with ErrUnsupported otherwise, without joining.
func NewGroupFromLatest() ConsumerOption {
	return NewGroupAt(wire.StartPosition{Kind: wire.StartLatest})
}

// NewGroupFromOffset makes a group this join creates start at offset n
// (the stream's oldest record if n is older; an n beyond the stream's end
// is refused). See NewGroupFromLatest.
func NewGroupFromOffset(n uint64) ConsumerOption {
	return NewGroupAt(wire.StartPosition{Kind: wire.StartOffset, Offset: n})
}

// NewGroupFromTime makes a group this join creates start at the first
// record published at or after t (the oldest for an older t, the end for
// a future one). See NewGroupFromLatest.
func NewGroupFromTime(t time.Time) ConsumerOption {
	return NewGroupAt(wire.StartAt(t))
}

// NewGroupAt makes a group this join creates start at p: latest,
// earliest (the default), an offset or a time, as the three options above
// (it is their common form, e.g. for a command-line flag).
func NewGroupAt(p wire.StartPosition) ConsumerOption {
	return func(c *consumerConfig) { c.start = &p }
}
