package bench

import (
	"context"
	"fmt"
)

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

// setUp runs setup, target's Setup: on failure it closes target and
// returns the error, naming it. Otherwise it returns the close to defer,
// which folds a failed Close into *err when nothing else failed.
func setUp(target interface {
	Name() string
	Close() error
}, setup func() error) (closeInto func(err *error), err error) {
	if err := setup(); err != nil {
		_ = target.Close()
		return nil, fmt.Errorf("bench: set up %s: %w", target.Name(), err)
	}
	return func(err *error) {
		if cerr := target.Close(); cerr != nil && *err == nil {
			*err = fmt.Errorf("bench: close %s: %w", target.Name(), cerr)
		}
	}, nil
}
