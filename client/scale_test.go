package client

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
)

// One event connection carries as many subscriptions as a broker allows
// per connection by default (--max-subscriptions-per-conn, 4096). The
// client used to let the broker open only 1024 event streams (QUIC's
// concurrent unidirectional streams, transport's default): subscription
// 1025 of a connection waited 5 s for a stream and failed with "context
// deadline exceeded", so a process with 2049 subscriptions (two event
// connections) could not have them.
func TestScaleSubscriptionsOnOneConnection(t *testing.T) {
	b := testbroker.Start(t, testbroker.WithStreams(testStream),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: 4})) // small queues: many subscriptions
	c := dial(t, b, Options{EventConns: 1})
	ctx := testCtx(t)
	const n = 1100
	subs := make([]*Subscription, 0, n)
	defer func() {
		for _, s := range subs {
			_ = s.Close()
		}
	}()
	for i := range n {
		sub, err := c.Subscribe(ctx, "default", "demo")
		if err != nil {
			t.Fatalf("subscription %d of %d on one connection: %v", i+1, n, err)
		}
		subs = append(subs, sub)
	}
	if err := c.Publish(ctx, "default", "demo", []byte("all")); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		if ev, err := s.Next(ctx); err != nil || string(ev.Payload) != "all" {
			t.Fatalf("subscription %d: %q, %v", i+1, ev.Payload, err)
		}
	}
}

// A subscription beyond the streams the client lets the broker open on a
// connection fails with an error that says so, not "context deadline
// exceeded".
func TestScaleSubscriptionBeyondStreamLimitSaysWhy(t *testing.T) {
	b := testbroker.Start(t, testbroker.WithStreams(testStream))
	opts := Options{EventConns: 1}
	opts.Transport.MaxIncomingUniStreams = 1
	c := dial(t, b, opts)
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	defer sub.Close()
	_, err := c.Subscribe(ctx, "default", "demo")
	if !isServerError(err, "no event stream within") || !strings.Contains(err.Error(), "allows no more streams on this connection (subscriptions on it: 1)") {
		t.Fatalf("subscription beyond the client's stream limit: %v", err)
	}
}

// One event connection carries as many queue consumers as subscriptions
// (--max-subscriptions-per-conn). Each consumer holds a stream the client
// opens, and the broker let a connection have only 1024 of those (QUIC's
// concurrent bidirectional streams, transport's default): consumer 1025
// of a connection waited RequestTimeout (30 s) and failed as a lost
// connection, and Consume rejoined in that loop for good.
func TestScaleQueueConsumersOnOneConnection(t *testing.T) {
	b := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/jobs"))
	c := dial(t, b, Options{EventConns: 1})
	ctx := testCtx(t)
	const n = 1100
	cons := make([]*Consumer, 0, n)
	defer func() {
		for _, co := range cons {
			_ = co.Close()
		}
	}()
	for i := range n {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		co, err := c.Consumer(jctx, "default", "jobs", "workers", WithConsumerName(fmt.Sprintf("c%d", i)))
		cancel()
		if err != nil {
			t.Fatalf("consumer %d of %d on one connection: %v", i+1, n, err)
		}
		cons = append(cons, co)
	}
}
