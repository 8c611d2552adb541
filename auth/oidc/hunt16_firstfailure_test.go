package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// failingEndpoint is an HTTP endpoint that always answers 502 and counts
// the requests it gets.
func failingEndpoint(t *testing.T) (url string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// A provider whose keys have never been fetched (down, or misconfigured,
// since the start) must not be asked once per exchange: anyone can send
// tokens naming its issuer (iss is read before any signature check), so
// each would make the control plane fetch again, and the exchanges queue
// one behind another on that fetch. Its first failure is remembered: for
// MinRefetchInterval every Verify answers ErrKeysUnavailable without a
// fetch, then one fetch is tried again. This holds for the JWKS and for
// the discovery document.
func TestVerifyFirstFetchFailureIsRateLimited(t *testing.T) {
	idp := oidctest.New(t)
	for _, tc := range []struct {
		name string
		cfg  func(url string) IssuerConfig
	}{
		{"jwks", func(url string) IssuerConfig {
			c := issuerConfig(idp)
			c.JWKSURL = url
			return c
		}},
		{"discovery", func(url string) IssuerConfig {
			c := issuerConfig(idp)
			c.DiscoveryURL = url
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, hits := failingEndpoint(t)
			cfg := tc.cfg(url)
			clock := testclock.New()
			v := &Verifier{Now: clock.Now}
			ctx := context.Background()
			verify := func(what string) {
				t.Helper()
				tok := idp.Token(t, oidctest.DefaultKID, idp.Claims(clock.Now(), "mallory"))
				if _, err := v.Verify(ctx, tok, []IssuerConfig{cfg}); !errors.Is(err, ErrKeysUnavailable) {
					t.Fatalf("%s: err = %v, want ErrKeysUnavailable", what, err)
				}
			}
			for i := range 5 {
				verify(fmt.Sprintf("attempt %d", i+1))
			}
			if got := hits.Load(); got != 1 {
				t.Fatalf("failing %s endpoint asked %d times by 5 exchanges within the refetch interval, want 1", tc.name, got)
			}
			clock.Advance(DefaultMinRefetchInterval)
			verify("after the refetch interval")
			verify("again")
			if got := hits.Load(); got != 2 {
				t.Fatalf("failing %s endpoint asked %d times, want 2 (one more after the interval)", tc.name, got)
			}
		})
	}
	// Once the provider answers, its keys are used at the next try.
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	cfg := issuerConfig(idp)
	cfg.JWKSURL = idp.JWKSURL()
	idp.SetJWKSBroken(true)
	tok := func() string { return idp.Token(t, oidctest.DefaultKID, idp.Claims(clock.Now(), "alice")) }
	if _, err := v.Verify(context.Background(), tok(), []IssuerConfig{cfg}); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("jwks down: err = %v", err)
	}
	idp.SetJWKSBroken(false)
	clock.Advance(DefaultMinRefetchInterval)
	if _, err := v.Verify(context.Background(), tok(), []IssuerConfig{cfg}); err != nil {
		t.Fatalf("jwks back up after the refetch interval: %v", err)
	}
}

// A fetch that fails because its request gave up (the client went away)
// says nothing of the provider: it is not remembered as a failure, so the
// next exchange fetches at once and succeeds, and a client hanging up
// cannot refuse everyone's exchanges for MinRefetchInterval.
func TestVerifyCanceledFetchIsNotRemembered(t *testing.T) {
	idp := oidctest.New(t)
	var calls atomic.Int32
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 { // the first request hangs until its client goes
			close(started)
			<-r.Context().Done()
			return
		}
		_, _ = w.Write(idp.JWKS())
	}))
	t.Cleanup(srv.Close)
	cfg := issuerConfig(idp)
	cfg.JWKSURL = srv.URL
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	tok := idp.Token(t, oidctest.DefaultKID, idp.Claims(clock.Now(), "alice"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tok, []IssuerConfig{cfg})
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; err == nil {
		t.Fatal("canceled exchange succeeded")
	}
	if _, err := v.Verify(context.Background(), tok, []IssuerConfig{cfg}); err != nil {
		t.Fatalf("exchange after another client gave up: %v", err)
	}
}
