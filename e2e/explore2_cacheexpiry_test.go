package e2e

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// expiringCacheBroker verifies tokens with no leeway, so a token's cache
// streams are reset right at its exp.
func expiringCacheBroker(t *testing.T) (*testbroker.Broker, *auth.Signer) {
	t.Helper()
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/ns/kv"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}}}))
	return tb, sg
}

func cacheToken(t testing.TB, sg *auth.Signer, ttl time.Duration) string {
	t.Helper()
	return cacheTokenUntil(t, sg, time.Now().Add(ttl))
}

// cacheTokenUntil is a cache token that expires at exp (exp has whole
// seconds: it is rounded down).
func cacheTokenUntil(t testing.TB, sg *auth.Signer, exp time.Time) string {
	t.Helper()
	tok, err := sg.Issue(auth.Claims{Tenant: "t1", Subject: "svc", Perms: []string{"cache.*:cache:t1/ns/kv"},
		ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A cache client with a TokenSource keeps working across several token
// expiries: its cache streams move to a fresh token before each expires,
// so Put and Get go on without a single failure and the values written are
// read back. (A stream that cannot finish its exchange with the broker in
// the half second before the expiry, on a loaded machine, is reset then;
// that costs no request, so it is logged, not failed: 1 run in 13 beside a
// full e2e run and two busy loops.)
func TestExplore2CacheTokenSourceAcrossExpiries(t *testing.T) {
	tb, sg := expiringCacheBroker(t)
	var issued atomic.Int64
	c := dial(t, tb, client.Options{TenantID: "t1", RequestTimeout: 5 * time.Second,
		TokenSource: func(context.Context) (string, error) {
			issued.Add(1)
			return cacheToken(t, sg, 2*time.Second), nil
		}})
	kv := c.Cache("ns", "kv")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ops int
	start := time.Now()
	for i := 0; time.Since(start) < 7*time.Second && i < 5000; i++ {
		key := "k" + string(rune('a'+i%26))
		val := []byte(time.Now().String())
		if _, err := kv.Put(ctx, key, val); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		got, ok, err := kv.Get(ctx, key)
		if err != nil || !ok || string(got) != string(val) {
			t.Fatalf("get %d: %q %v %v, want %q", i, got, ok, err, val)
		}
		ops++
		time.Sleep(10 * time.Millisecond) // a steady trickle, not a load test
	}
	resets := tb.Server.Stats().TokenExpiries.Load()
	t.Logf("%d put+get, %d tokens, %d expiry resets", ops, issued.Load(), resets)
	if issued.Load() < 2*8 {
		t.Errorf("TokenSource called %d times: the 8 cache streams did not rotate", issued.Load())
	}
}

// Without a TokenSource, once the token expires the cache fails with an
// error that says so, and keeps failing (it never serves an expired token).
//
// The set-up (Dial, a first Put) must finish before the token expires, or
// nothing is tested: a try whose set-up the token did not outlast (a
// loaded machine) is tried again with a longer-lived token
// (testbroker.Retry).
func TestExplore2CacheStaticTokenFailsClearly(t *testing.T) {
	tb, sg := expiringCacheBroker(t)
	testbroker.Retry(t, time.Second, 4, func(a *testbroker.Attempt) {
		// At least a.Limit away, at most a second more: exp has whole
		// seconds (1 to 2 s on the first try).
		exp := time.Now().Add(a.Limit + time.Second).Truncate(time.Second)
		tok := cacheTokenUntil(a, sg, exp)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second+a.Limit)
		defer cancel()
		a.SetupBy(exp)
		c := dial(a, tb, client.Options{TenantID: "t1", Token: tok, RequestTimeout: 5 * time.Second,
			Reconnect: client.ReconnectPolicy{MaxBackoff: 50 * time.Millisecond}})
		kv := c.Cache("ns", "kv")
		if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
			a.Fatal(err)
		}
		a.SetupDone()
		var firstErr error
		for deadline := exp.Add(4 * time.Second); time.Now().Before(deadline); {
			if _, _, err := kv.Get(ctx, "k"); err != nil {
				firstErr = err
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if firstErr == nil {
			a.Fatal("the cache kept answering after its token expired")
		}
		a.Logf("first error after expiry: %v (ErrTokenExpired %v, ErrDisconnected %v)", firstErr,
			errors.Is(firstErr, client.ErrTokenExpired), errors.Is(firstErr, client.ErrDisconnected))
		// The next requests: the client reconnects with the same, expired token.
		var errs []string
		for range 3 {
			_, err := kv.Put(ctx, "k", []byte("v2"))
			if err == nil {
				a.Fatal("a put with an expired token succeeded")
			}
			errs = append(errs, err.Error())
			if !strings.Contains(err.Error(), "auth failed") && !errors.Is(err, client.ErrTokenExpired) {
				a.Errorf("put after expiry: %v; want an error naming the token or auth", err)
			}
		}
		a.Logf("later errors: %q", errs)
		if ctx.Err() != nil {
			a.Fatal("requests after expiry waited for the context instead of failing")
		}
	})
}
