package bench

import "context"

// PubSubTarget is a publish/subscribe system under test: Felix, NATS core,
// or anything that can fan one publisher's messages out to subscribers.
//
// RunPubSub calls Setup once, then Publish (from one goroutine) and Flush,
// and Close once at the end; a target may be set up again after Close.
type PubSubTarget interface {
	// Name labels the target in reports ("nats", "felix", ...).
	Name() string
	// Setup creates `subscribers` subscribers on one subject/stream; each
	// calls deliver(sub, payload) for every message (payload valid only
	// during the call), sub in [0, subscribers). deliver is safe for
	// concurrent use, and cheapest when each subscriber delivers from one
	// goroutine. Returns when all subscriptions are live.
	Setup(ctx context.Context, subscribers int, deliver func(sub int, payload []byte)) error
	// Publish sends the payloads in order as one batch (a batch of 1 for
	// single publishes). It may return before delivery, but must not keep
	// the payload slices: the caller reuses them once Publish returns.
	Publish(ctx context.Context, payloads [][]byte) error
	// Flush waits until everything published so far has left the publisher
	// (e.g. nats Flush).
	Flush(ctx context.Context) error
	// Close releases everything Setup created. The harness ignores
	// deliveries that race with Close.
	Close() error
}
