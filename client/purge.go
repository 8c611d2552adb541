package client

import (
	"context"
	"fmt"

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
// purged); a broker without the extension (capability wire.CapPurge)
// gives ErrUnsupported without anything being sent. A purge that fails
// with a *ConnectionError may or may not have happened; purging again is
// harmless.
func (c *Client) PurgeStream(ctx context.Context, namespace, stream string) (PurgeResult, error) {
	if c.ServerFlags()&wire.CapPurge == 0 {
		return PurgeResult{}, fmt.Errorf("felix: broker does not offer stream purge (capability %#04x): %w", wire.CapPurge, ErrUnsupported)
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
