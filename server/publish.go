package server

import (
	"errors"
	"fmt"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/wire"
)

// Permission actions checked by the server (the strings of package auth).
const (
	ActionPublish    = auth.ActionStreamPublish
	ActionSubscribe  = auth.ActionStreamSubscribe
	ActionCacheRead  = auth.ActionCacheRead
	ActionCacheWrite = auth.ActionCacheWrite
)

// StreamResource is the RBAC resource name of a stream.
func StreamResource(tenant, ns, stream string) string { return auth.StreamResource(tenant, ns, stream) }

var errForbidden = errors.New("forbidden")

// publisher resolves and publishes to streams for one authenticated stream,
// caching stream handles (bounded) so the hot path skips the registry.
type publisher struct {
	c     *conn
	id    *Identity
	cache map[broker.StreamKey]*broker.Stream
}

func newPublisher(c *conn, id *Identity) *publisher {
	return &publisher{c: c, id: id, cache: map[broker.StreamKey]*broker.Stream{}}
}

const maxCachedStreams = 1024

func (p *publisher) lookup(ns, name string) (*broker.Stream, error) {
	k := broker.StreamKey{Tenant: p.id.Tenant, Namespace: ns, Stream: name}
	if s := p.cache[k]; s != nil {
		return s, nil
	}
	if !p.c.authorize(p.id, ActionPublish, StreamResource(k.Tenant, ns, name)) {
		return nil, errForbidden
	}
	s, err := p.c.s.opts.Broker.Stream(k.Tenant, ns, name)
	if err != nil {
		return nil, err
	}
	if len(p.cache) >= maxCachedStreams {
		clear(p.cache)
	}
	p.cache[k] = s
	return s, nil
}

// publishUnacked is publish for a request nobody answers: a publish to a
// stream that is not there and cannot be created (see unresolvable) is
// dropped, counted (UnknownStreamDrop) and not an error. One refused
// because the broker is closing is dropped and counted (ShutdownDrop),
// and its error returned: a publish-only stream ends on it.
func (p *publisher) publishUnacked(ns, name string, payloads [][]byte, framed broker.Framed) error {
	err := p.publish(ns, name, payloads, framed)
	switch {
	case err == nil, errors.Is(err, broker.ErrStoredNotDelivered): // stored: not a drop
	case unresolvable(err):
		p.c.s.stats.UnknownStreamDrop.Add(1)
		return nil
	case errors.Is(err, errEventTooLarge):
		return nil // dropped, counted in EventTooLargeDrop
	case errors.Is(err, broker.ErrClosed):
		p.c.s.stats.ShutdownDrop.Add(1)
	}
	return err
}

// errEventTooLarge: an event that, framed for its subscribers, would not
// fit the frame limit they read with; see eventTooLarge.
var errEventTooLarge = errors.New("event too large")

// eventTooLarge refuses a publish holding an event larger than the frame
// limit less wire.MaxEventOverhead: the publish frame itself fits the limit, but
// such an event could never be delivered (every subscriber would refuse
// its frame, and a queue would redeliver it forever).
func (p *publisher) eventTooLarge(payloads [][]byte) error {
	limit := p.c.s.maxFrame() - wire.MaxEventOverhead
	for _, e := range payloads {
		if len(e) > limit {
			p.c.s.stats.EventTooLargeDrop.Add(1)
			return fmt.Errorf("%w: %d bytes, at most %d (the frame limit %d less %d bytes of event framing)",
				errEventTooLarge, len(e), limit, p.c.s.maxFrame(), wire.MaxEventOverhead)
		}
	}
	return nil
}

// unresolvable reports whether err means the stream is not there and
// cannot be created: unknown, deleted (publish looks a deleted stream up
// once more, so this is one deleted again meanwhile), or, with
// auto-create, a name the broker refuses or one stream too many. An
// unanswered publish is dropped then whether or not streams are
// auto-created (the reference drops one to an unknown stream; a
// publish-only stream goes on). Events stored before their stream ended
// are not dropped: err then matches broker.ErrStoredNotDelivered, which
// the caller checks first.
func unresolvable(err error) bool {
	return errors.Is(err, broker.ErrStreamNotFound) || errors.Is(err, broker.ErrStreamDeleted) ||
		errors.Is(err, broker.ErrInvalidName) || errors.Is(err, broker.ErrTooManyStreams)
}

// publish appends payloads to tenant/ns/stream. Unknown streams return a
// *broker.NotFoundError; a deleted cached stream is looked up once more.
// framed, when its Buf is not nil, is the buffer of the binary publish that
// holds the payloads, handed over to the stream (see
// broker.Stream.PublishFramed).
func (p *publisher) publish(ns, name string, payloads [][]byte, framed broker.Framed) error {
	for attempt := 0; ; attempt++ {
		s, err := p.lookup(ns, name)
		if err != nil {
			return err
		}
		if attempt == 0 {
			if err := p.eventTooLarge(payloads); err != nil {
				return err
			}
			if err := p.c.s.tenants.allowPublish(p.id.use, payloads); err != nil {
				return err
			}
		}
		if framed.Buf != nil {
			_, err = s.PublishFramed(p.c.qc.Context(), payloads, framed)
		} else {
			_, err = s.Publish(p.c.qc.Context(), payloads)
		}
		if errors.Is(err, broker.ErrStreamDeleted) && attempt == 0 && !errors.Is(err, broker.ErrStoredNotDelivered) {
			// Deleted before it took the events: publish them to the
			// stream now under that name (if any). Not when they were
			// stored (a block-policy subscriber held the publish):
			// again would store them twice.
			delete(p.cache, s.Key())
			continue
		}
		// A context error means the connection went away while a Block
		// subscriber held us: the events are in the stream, but not every
		// delivery could be promised, so it is not an ok.
		return err
	}
}

// framedBody returns where the payloads of a binary publish lie in owned,
// the buffer its frame payload was read into (wire.Reader.ReadFrameOwned
// with headroom broker.FramedHeadroom): body is the publish-batch body
// within that payload, decoded into batch. It returns the zero Framed when
// the payload was not read into a buffer of its own.
func framedBody(owned, body []byte, batch *wire.BinaryPublishBatch) broker.Framed {
	if owned == nil {
		return broker.Framed{}
	}
	// body ends where owned ends (the frame payload is owned's tail).
	return broker.Framed{Buf: owned, At: len(owned) - len(body) + batch.PayloadsAt}
}
