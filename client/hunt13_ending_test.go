package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// callsDuringOutage starts one call of every kind on c while its broker
// is stopped, waits until each connection slot has failed to redial, and
// returns the calls' results.
func callsDuringOutage(t *testing.T, ctx context.Context, c *Client) map[string]chan error {
	t.Helper()
	calls := map[string]func() error{
		"publish":     func() error { return c.Publish(ctx, "default", "jobs", []byte("x")) },
		"cache get":   func() error { _, _, err := c.Cache("default", "kept").Get(ctx, "k"); return err },
		"queue stats": func() error { _, err := c.QueueStats(ctx, "default", "jobs", "g"); return err },
		"request":     func() error { _, err := c.Request(ctx, "default", "echo", []byte("x")); return err },
		"subscribe": func() error {
			s, err := c.Subscribe(ctx, "default", "jobs", FromEarliest())
			if err == nil {
				s.Close()
			}
			return err
		},
		"consumer": func() error {
			co, err := c.Consumer(ctx, "default", "jobs", "g")
			if err == nil {
				co.Close()
			}
			return err
		},
		"serve": func() error {
			s, err := c.Serve(ctx, "default", "echo", echoHandler)
			if err == nil {
				s.Close()
			}
			return err
		},
	}
	out := map[string]chan error{}
	for name, f := range calls {
		ch := make(chan error, 1)
		go func() { ch <- f() }()
		out[name] = ch
	}
	dialing := func(s *connSlot) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.failures > 0 || len(s.dial) == 1
	}
	pollUntil(t, "every connection slot redialing", func() bool {
		return dialing(c.pubSlots[0]) && dialing(c.eventSlots[0]) && dialing(c.cacheSlots[0])
	})
	return out
}

// Calls waiting for a reconnection (the broker is down) end with the
// error that ended them: context.Canceled when their context is
// cancelled, ErrClosed when the client closes; never a *ConnectionError
// or a hang. A subscription that was resubscribing ends with ErrClosed.
func TestHunt13CallsDuringReconnectEndConsistently(t *testing.T) {
	for _, mode := range []string{"cancel", "close"} {
		t.Run(mode, func(t *testing.T) {
			b := startKeptQueueBroker(t)
			keptCache(t, b, t.TempDir())
			c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1, CacheConns: 1, CacheStreamsPerConn: 1,
				Reconnect: fastReconnect})
			tctx := testCtx(t)
			// Every connection is established once, so what follows is a
			// reconnection.
			if err := c.Publish(tctx, "default", "jobs", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Cache("default", "kept").Get(tctx, "k"); err != nil {
				t.Fatal(err)
			}
			sub := subscribe(t, tctx, c, "default", "jobs", FromEarliest())
			if _, err := sub.Next(tctx); err != nil {
				t.Fatal(err)
			}
			b.Stop()
			// Calls on a connection not yet known lost fail with it: start
			// them once the client knows.
			pollUntil(t, "the client to see its connections closed", func() bool {
				return c.pubSlots[0].current() == nil && c.eventSlots[0].current() == nil && c.cacheSlots[0].current() == nil
			})

			ctx, cancel := context.WithCancel(tctx)
			defer cancel()
			calls := callsDuringOutage(t, ctx, c)
			// A call that does not redial by itself may have failed before
			// (a later call redials): with a lost connection, no more.
			for name, ch := range calls {
				select {
				case err := <-ch:
					if !errors.Is(err, ErrDisconnected) {
						t.Errorf("%s, before the end: %v, want a *ConnectionError", name, err)
					}
					delete(calls, name)
				default:
				}
			}
			want := context.Canceled
			if mode == "cancel" {
				cancel()
			} else {
				returnsWithin(t, 10*time.Second, "Close", func() { c.Close() })
				want = ErrClosed
			}
			for name, ch := range calls {
				select {
				case err := <-ch:
					if !errors.Is(err, want) || errors.Is(err, ErrDisconnected) {
						t.Errorf("%s: %v, want %v", name, err, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s did not end", name)
				}
			}
			if mode == "close" {
				select {
				case <-sub.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the subscription did not end")
				}
				if err := sub.Err(); !errors.Is(err, ErrClosed) {
					t.Errorf("subscription: %v, want ErrClosed", err)
				}
			}
		})
	}
}

// Every call made after Close returns ErrClosed, whichever connection it
// would need (before: a call that found its connection closed could
// redial on the closed transport and fail with a *ConnectionError,
// "dial: ... quic: transport closed").
func TestHunt13CallsAfterCloseAreErrClosed(t *testing.T) {
	b := startKeptQueueBroker(t)
	keptCache(t, b, t.TempDir())
	ctx := testCtx(t)
	for i := range 50 {
		c := dial(t, b, Options{})
		if _, err := c.Request(ctx, "default", "echo", []byte("x")); !errors.Is(err, ErrNoResponders) {
			t.Fatalf("request before Close: %v", err)
		}
		c.Close()
		checks := map[string]error{}
		_, checks["request"] = c.Request(ctx, "default", "echo", []byte("x"))
		_, _, checks["cache get"] = c.Cache("default", "kept").Get(ctx, "k")
		_, checks["queue stats"] = c.QueueStats(ctx, "default", "jobs", "g")
		checks["publish"] = c.Publish(ctx, "default", "jobs", []byte("x"))
		_, checks["subscribe"] = c.Subscribe(ctx, "default", "jobs")
		_, checks["consumer"] = c.Consumer(ctx, "default", "jobs", "g")
		_, checks["serve"] = c.Serve(ctx, "default", "echo", echoHandler)
		for name, err := range checks {
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("try %d: %s after Close: %v, want ErrClosed", i, name, err)
			}
		}
	}
}

// Closing a subscription, a consumer's Consume and a Service while their
// broker is down (each trying to come back) ends each at once: Close
// returns, Err is ErrClosed for the subscription and nil for the
// service, Consume returns its context's error.
func TestHunt13CloseWhileComingBack(t *testing.T) {
	b := startKeptQueueBroker(t)
	c := dial(t, b, Options{Reconnect: fastReconnect})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "jobs")
	svc, err := c.Serve(ctx, "default", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		consumed <- c.Consume(cctx, "default", "jobs", "g", func(context.Context, *Message) error { return nil })
	}()
	pollUntil(t, "the consumer to join", func() bool {
		st, err := c.QueueStats(ctx, "default", "jobs", "g")
		return err == nil && st.Members == 1
	})
	b.Stop()
	pollUntil(t, "the event connections to be redialed", func() bool {
		for _, s := range c.eventSlots {
			s.mu.Lock()
			f := s.failures
			s.mu.Unlock()
			if f > 0 || len(s.dial) == 1 {
				return true
			}
		}
		return false
	})
	returnsWithin(t, 5*time.Second, "Subscription.Close", func() { sub.Close() })
	if err := sub.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("subscription: %v, want ErrClosed", err)
	}
	returnsWithin(t, 5*time.Second, "Service.Close", func() { svc.Close() })
	if err := svc.Err(); err != nil {
		t.Errorf("service: %v, want nil after Close", err)
	}
	cancel()
	select {
	case err := <-consumed:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Consume: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Consume did not return")
	}
}
