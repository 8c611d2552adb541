package client

import (
	"testing"
	"time"
)

// An event connection with a short idle timeout stays up while nothing is
// published, and while a SubscribeFunc handler holds the stream for longer
// than the timeout: its keep-alives are enough, so the subscription is not
// torn down and resubscribed (which on an in-memory stream would lose the
// events published meanwhile).
func TestExplore2EventIdleTimeoutKeepsQuietSubscription(t *testing.T) {
	b, c, ctx := setup(t, Options{EventConns: 1, EventIdleTimeout: 900 * time.Millisecond})
	gate := make(chan struct{})
	got := make(chan string, 16)
	fsub, err := c.SubscribeFunc(ctx, "default", "demo", func(ev Event) error {
		<-gate
		got <- string(ev.Payload)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fsub.Close()
	sub := subscribe(t, ctx, c, "default", "demo")
	id, fid := sub.ID(), fsub.ID()
	if err := c.Publish(ctx, "default", "demo", []byte("a")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"a"})
	// Quiet for three idle timeouts, with the handler blocked.
	time.Sleep(3 * time.Second)
	close(gate)
	if err := c.Publish(ctx, "default", "demo", []byte("b")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"b"})
	for _, want := range []string{"a", "b"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("handler got %q, want %q", g, want)
			}
		case <-ctx.Done():
			t.Fatal("handler did not get", want)
		}
	}
	if sub.ID() != id || fsub.ID() != fid {
		t.Fatalf("subscriptions were re-established during a quiet period (ids %d→%d, %d→%d)", id, sub.ID(), fid, fsub.ID())
	}
	_ = b
}
