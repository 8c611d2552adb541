package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// tokenExpiryBroker verifies tokens with no leeway, so a token's streams
// are reset right at its exp.
func tokenExpiryBroker(t testing.TB) (*testbroker.Broker, *auth.Signer) {
	t.Helper()
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{}, "t1/ns/jobs"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v}}))
	return tb, sg
}

func shortToken(t testing.TB, sg *auth.Signer, ttl time.Duration) string {
	t.Helper()
	return jobsToken(t, sg, time.Now().Add(ttl))
}

// jobsToken is a token for t1/ns/jobs that expires at exp (exp has whole
// seconds: it is rounded down).
func jobsToken(t testing.TB, sg *auth.Signer, exp time.Time) string {
	t.Helper()
	tok, err := sg.Issue(auth.Claims{Tenant: "t1", Subject: "svc", Perms: []string{"stream.*:stream:t1/ns/jobs"},
		ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// With a TokenSource, a client outlives its tokens: its publish streams
// move to a fresh token before each expires, so no publish fails, and when
// the broker resets the subscription's stream at expiry, the subscription
// resumes by offset on a fresh token (no gap, no duplicate, on a durable
// stream).
func TestTokenSourceOutlivesExpiringTokens(t *testing.T) {
	tb, sg := tokenExpiryBroker(t)
	var issued atomic.Int64
	c := dial(t, tb, client.Options{TenantID: "t1", RequestTimeout: 5 * time.Second,
		TokenSource: func(context.Context) (string, error) {
			issued.Add(1)
			return shortToken(t, sg, 2*time.Second), nil
		}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan uint64, 1024)
	sub, err := c.SubscribeFunc(ctx, "ns", "jobs", func(ev client.Event) error {
		got <- binary.BigEndian.Uint64(ev.Payload)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	// Publish for two token lifetimes and more; every publish succeeds.
	var sent uint64
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); sent++ {
		if err := c.Publish(ctx, "ns", "jobs", seq(sent, 8)); err != nil {
			t.Fatalf("publish %d: %v", sent, err)
		}
		time.Sleep(20 * time.Millisecond) // a steady trickle, not a load test
	}
	// The subscriber sees every record once, in order.
	for want := uint64(0); want < sent; {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("received %d, want %d", v, want)
			}
			want++
		case <-ctx.Done():
			t.Fatalf("received %d of %d records", want, sent)
		}
	}
	if n := issued.Load(); n < 4 {
		t.Errorf("TokenSource called %d times; the client should have needed fresh tokens", n)
	}
	// Only the subscription's stream is reset at expiry (publish streams
	// rotate first); it was, and the subscription went on.
	if n := tb.Server.Stats().TokenExpiries.Load(); n < 1 {
		t.Errorf("%d streams reset for expiry, want the subscription's at least", n)
	}
	if sub.Err() != nil {
		t.Errorf("subscription ended: %v", sub.Err())
	}
	t.Logf("%d records, %d tokens issued, %d expiry resets", sent, issued.Load(), tb.Server.Stats().TokenExpiries.Load())
}

// Without a TokenSource the client keeps its one token: when it expires
// the subscription is reset, cannot authenticate again, and ends saying
// why; the broker does not keep serving the expired token.
//
// The set-up (Dial, Subscribe) must finish before the token expires, or
// the subscription never starts and nothing is tested: a try whose set-up
// the token did not outlast (a loaded machine) is tried again with a
// longer-lived token (testbroker.Retry).
func TestStaticTokenEndsAtExpiry(t *testing.T) {
	tb, sg := tokenExpiryBroker(t)
	testbroker.Retry(t, time.Second, 4, func(a *testbroker.Attempt) {
		// At least a.Limit away, at most a second more: exp has whole
		// seconds (1 to 2 s on the first try).
		exp := time.Now().Add(a.Limit + time.Second).Truncate(time.Second)
		tok := jobsToken(a, sg, exp)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.SetupBy(exp)
		c := dial(a, tb, client.Options{TenantID: "t1", Token: tok,
			Reconnect: client.ReconnectPolicy{MaxBackoff: 50 * time.Millisecond}})
		sub, err := c.Subscribe(ctx, "ns", "jobs")
		if err != nil {
			a.Fatal(err)
		}
		a.SetupDone()
		select {
		case <-sub.Done():
		case <-ctx.Done():
			a.Fatal("the subscription outlived its token")
		}
		var se *client.ServerError
		if !errors.As(sub.Err(), &se) || se.Message != "auth failed" || !errors.Is(sub.Err(), client.ErrTokenExpired) {
			a.Fatalf("subscription ended with %v, want the broker's auth failed, matching ErrTokenExpired", sub.Err())
		}
		if err := c.Publish(ctx, "ns", "jobs", []byte("late")); !errors.Is(err, client.ErrTokenExpired) {
			a.Fatalf("a publish with an expired token: %v, want ErrTokenExpired", err)
		}
	})
}
