package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Two subscriptions of one client that ask for the same id (WithSubscriptionID)
// on different streams, concurrently, on one event connection: each must
// either fail or receive its own stream's events, never the other's. (The
// broker does not check ids and the client pairs event streams by id, so
// one of them was handed the other's event stream, events labelled with
// the wrong stream, or waited for its stream until the request timeout.)
// Now the second is refused with ErrSubscriptionIDInUse.
func TestExplore2SubscriptionIDCollision(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{EventConns: 1, RequestTimeout: 3 * time.Second})
	ctx := testCtx(t)
	for round := range 20 {
		id := uint64(1000 + round)
		var wg sync.WaitGroup
		subs := make([]*Subscription, 2)
		errs := make([]error, 2)
		for i, stream := range []string{"demo", "other"} {
			wg.Go(func() { subs[i], errs[i] = c.Subscribe(ctx, "default", stream, WithSubscriptionID(id)) })
		}
		wg.Wait()
		for i, stream := range []string{"demo", "other"} {
			if errs[i] != nil {
				if !errors.Is(errs[i], ErrSubscriptionIDInUse) {
					t.Errorf("round %d: subscribe %s: %v, want success or ErrSubscriptionIDInUse", round, stream, errs[i])
				}
				continue
			}
			if err := c.Publish(ctx, "default", stream, []byte(stream)); err != nil {
				t.Fatal(err)
			}
		}
		if (subs[0] == nil) == (subs[1] == nil) {
			t.Fatalf("round %d: subscribe errors %v, %v: want exactly one refused", round, errs[0], errs[1])
		}
		for i, stream := range []string{"demo", "other"} {
			if subs[i] == nil {
				continue
			}
			nctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds a missing event; it comes at once
			ev, err := subs[i].Next(nctx)
			cancel()
			if err == nil && string(ev.Payload) != stream {
				t.Errorf("round %d: subscription to %s received %q (labelled %s/%s)", round, stream, ev.Payload, ev.Namespace, ev.Stream)
			}
			if err != nil {
				t.Errorf("round %d: subscription to %s: no event: %v", round, stream, err)
			}
			_ = subs[i].Close()
		}
		if t.Failed() {
			return
		}
	}
}

// A client-chosen id that equals an id the broker assigns to another
// subscription on the same connection.
func TestExplore2SubscriptionIDCollidesWithAssigned(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{EventConns: 1, RequestTimeout: 3 * time.Second})
	ctx := testCtx(t)
	s1 := subscribe(t, ctx, c, "default", "demo") // broker-assigned id
	s2, err := c.Subscribe(ctx, "default", "other", WithSubscriptionID(s1.ID()))
	if err != nil {
		t.Logf("colliding subscribe refused: %v", err)
		return
	}
	defer s2.Close()
	if err := c.Publish(ctx, "default", "demo", []byte("demo")); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "default", "other", []byte("other")); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		s    *Subscription
		want string
	}{{s1, "demo"}, {s2, "other"}} {
		nctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds a missing event; it comes at once
		ev, err := x.s.Next(nctx)
		cancel()
		if err == nil && string(ev.Payload) != x.want {
			t.Errorf("subscription to %s received %q", x.want, ev.Payload)
		}
	}
}

// An id is free again once the subscription that used it has ended, and a
// subscription that resubscribes keeps using its own id.
func TestExplore2SubscriptionIDReusedAfterClose(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{EventConns: 1})
	ctx := testCtx(t)
	s1 := subscribe(t, ctx, c, "default", "demo", WithSubscriptionID(1<<40))
	if _, err := c.Subscribe(ctx, "default", "other", WithSubscriptionID(1<<40)); !errors.Is(err, ErrSubscriptionIDInUse) {
		t.Fatalf("second subscribe with a used id: %v, want ErrSubscriptionIDInUse", err)
	}
	_ = s1.Close()
	s2 := subscribe(t, ctx, c, "default", "other", WithSubscriptionID(1<<40))
	if err := c.Publish(ctx, "default", "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, s2, []string{"x"})
}
