package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
)

// The SDK recognises the shutdown's reply by its text: the broker's
// engine error it must match.
func TestBrokerClosedMessageIsTheBrokers(t *testing.T) {
	if got := broker.ErrClosed.Error(); got != brokerClosedMessage {
		t.Fatalf("broker.ErrClosed is %q, the SDK matches %q", got, brokerClosedMessage)
	}
}

// A broker that is shutting down answers a subscribe it reads after its
// engine closed with `error "broker closed"`: its connections stay open
// while it drains, and a stream it accepted just before the drain began
// is still served. That is the broker going away, not a refusal of the
// subscription: a subscription whose resubscribe gets it must keep
// trying, and go on on the restarted broker, as after any other loss.
// (The test closes the engine first, as the drain does, so that every
// resubscribe meets the closed engine, not only one in the race.)
func TestHunt18ResubscribeSurvivesBrokerClosedReply(t *testing.T) {
	// Count the resubscribe attempts: the second wait comes after the
	// first attempt failed. (Restored once the client is closed.)
	waits := make(chan struct{}, 1000)
	orig := resubscribeWait
	t.Cleanup(func() { resubscribeWait = orig })
	resubscribeWait = func(ctx context.Context, d time.Duration) error {
		select {
		case waits <- struct{}{}:
		default:
		}
		return orig(ctx, d)
	}
	b := startBroker(t)
	c := dial(t, b, Options{Reconnect: fastReconnect, EventConns: 1})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	publishAfterRestart(t, ctx, c, "demo", []byte("before"))
	expectEvents(t, ctx, sub, []string{"before"})

	id := sub.ID()
	b.Broker.Close() // the event stream ends; the resubscribe meets the closed engine
	<-waits
	select {
	case <-waits: // the first attempt failed, and it goes on
	case <-sub.Done():
	case <-ctx.Done():
		t.Fatal("no resubscribe attempt")
	}
	b.Restart()
	publishUntilSeen(t, ctx, c, sub, id)
}

// publishUntilSeen publishes to default/demo until sub, which was id
// before a restart, delivers one of the events, failing the test if the
// subscription ends instead.
func publishUntilSeen(t *testing.T, ctx context.Context, c *Client, sub *Subscription, id uint64) {
	t.Helper()
	for {
		publishAfterRestart(t, ctx, c, "demo", []byte("after"))
		nctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		ev, err := sub.Next(nctx)
		cancel()
		switch {
		case err == nil:
			if string(ev.Payload) != "after" {
				t.Fatalf("event %q after the restart", ev.Payload)
			}
			return
		case sub.Err() != nil:
			t.Fatalf("the subscription (id %d before the restart) ended: %v", id, sub.Err())
		case ctx.Err() != nil:
			t.Fatal("no event after the restart")
		}
	}
}

// A queue join a shutting-down broker answers with "broker closed" is a
// lost connection (Consume joins again, on the restarted broker), not a
// refusal, which would end Consume.
func TestHunt18JoinBrokerClosedIsDisconnected(t *testing.T) {
	b := startQueueTestBroker(t)
	c := dial(t, b, Options{Reconnect: fastReconnect})
	ctx := testCtx(t)
	b.Broker.Close() // as the drain does before the connections close

	_, err := c.Consumer(ctx, "default", "jobs", "g")
	if !errors.Is(err, ErrDisconnected) || isServerReply(err) {
		t.Fatalf("join while the broker shuts down: %v, want a *ConnectionError", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		consumed <- c.Consume(cctx, "default", "jobs", "g", func(_ context.Context, m *Message) error {
			cancel()
			return nil
		})
	}()
	b.Restart()
	publishAfterRestart(t, ctx, c, "jobs", []byte("job"))
	if err := <-consumed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume across the restart: %v, want the context's end after the job", err)
	}
}
