package demo

import (
	"context"
	"fmt"

	"github.com/felixmq/felix/client"
)

// runSimple: subscribe, publish "hello" and "world", receive both. It uses
// default/default/demo, which a development `felix serve` declares.
func runSimple(ctx context.Context, e *env) error {
	const tenant, ns, stream = "default", "default", "demo"
	if err := e.startBroker(needs{streams: []string{tenant + "/" + ns + "/" + stream}}); err != nil {
		return err
	}

	e.stepf("Connecting a client as tenant %q.", tenant)
	c, err := e.dial(ctx, tenant, client.Options{PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1})
	if err != nil {
		return err
	}
	defer c.Close()
	e.notef("Connected (one QUIC connection for publishes, one for events).")

	e.stepf("Subscribing to %s/%s.", ns, stream)
	sub, err := c.Subscribe(ctx, ns, stream)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()
	e.notef("Subscribe response: subscribed (subscription id %d); the broker opened the event stream.", sub.ID())

	words := []string{"hello", "world"}
	e.stepf("Publishing %q and %q.", words[0], words[1])
	for _, w := range words {
		if err := c.Publish(ctx, ns, stream, []byte(w)); err != nil {
			return fmt.Errorf("publish %q: %w", w, err)
		}
		e.notef("published %q: the broker acknowledged it", w)
	}

	e.stepf("Reading the events from the subscription.")
	var got []string
	for i := range words {
		ev, err := sub.Next(ctx)
		if err != nil {
			return fmt.Errorf("event %d: %w", i+1, err)
		}
		got = append(got, string(ev.Payload))
		e.notef("event %d: %q on %s/%s", i+1, ev.Payload, ev.Namespace, ev.Stream)
	}
	inOrder := len(got) == 2 && got[0] == words[0] && got[1] == words[1]
	e.check(inOrder, "received %d/%d events, in the order they were published", len(got), len(words))

	e.stepf("Closing the subscription and the client.")
	if err := sub.Close(); err != nil {
		return fmt.Errorf("close subscription: %w", err)
	}
	return c.Close()
}
