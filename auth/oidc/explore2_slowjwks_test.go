package oidc

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// A token whose key is cached never waits for a JWKS fetch. One issuer's
// JWKS endpoint hangs and a token with an unknown kid makes the Verifier
// fetch it. The Verifier used to hold its one mutex for the whole fetch
// (http.DefaultClient has no timeout; only that request's context ends
// it), so every other exchange, of the same issuer or of another tenant's,
// waited behind it: one unauthenticated request could stall all token
// exchanges for as long as it kept its connection open.
func TestExplore2SlowJWKSDoesNotBlockCachedKeys(t *testing.T) {
	slowIdP := oidctest.New(t) // tenant A's provider, whose JWKS will hang
	okIdP := oidctest.New(t)   // tenant B's provider, healthy
	hang := make(chan struct{})
	hanging := make(chan struct{}, 1)
	var block atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block.Load() {
			hanging <- struct{}{}
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
		w.Write(slowIdP.JWKS())
	}))
	defer slow.Close()
	defer close(hang)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	cfgA := IssuerConfig{Issuer: slowIdP.Issuer(), Audiences: []string{oidctest.Audience}, JWKSURL: slow.URL}
	cfgB := IssuerConfig{Issuer: okIdP.Issuer(), Audiences: []string{oidctest.Audience}, JWKSURL: okIdP.JWKSURL()}
	ctx := context.Background()
	tokA := slowIdP.Token(t, "ec-1", slowIdP.Claims(clock.Now(), "a"))
	tokB := okIdP.Token(t, "ec-1", okIdP.Claims(clock.Now(), "b"))
	for _, c := range []struct {
		tok string
		cfg IssuerConfig
	}{{tokA, cfgA}, {tokB, cfgB}} {
		if _, err := v.Verify(ctx, c.tok, []IssuerConfig{c.cfg}); err != nil {
			t.Fatal(err)
		}
	}
	// An unknown kid for A, after the refetch interval: the fetch hangs.
	slowIdP.AddEC(t, "ghost", elliptic.P256())
	ghost := slowIdP.Token(t, "ghost", slowIdP.Claims(clock.Now(), "x"))
	clock.Advance(DefaultMinRefetchInterval)
	block.Store(true)
	attackCtx, cancelAttack := context.WithCancel(ctx)
	defer cancelAttack()
	go v.Verify(attackCtx, ghost, []IssuerConfig{cfgA})
	<-hanging

	type result struct {
		name string
		err  error
	}
	done := make(chan result, 2)
	for _, c := range []struct {
		name string
		tok  string
		cfg  IssuerConfig
	}{{"same issuer, cached kid", tokA, cfgA}, {"other issuer (tenant), cached kid", tokB, cfgB}} {
		go func() { _, err := v.Verify(ctx, c.tok, []IssuerConfig{c.cfg}); done <- result{c.name, err} }()
	}
	timeout := time.After(2 * time.Second)
	for range 2 {
		select {
		case r := <-done:
			if r.err != nil {
				t.Errorf("%s: %v", r.name, r.err)
			}
		case <-timeout:
			t.Errorf("Verify of a cached key still waiting after 2 s behind a hanging JWKS fetch of tenant A's issuer")
			cancelAttack()
			r := <-done
			t.Logf("released: %s", r.name)
			r = <-done
			t.Logf("released: %s", r.name)
			return
		}
	}
}

// Concurrent tokens with an unknown kid, after the refetch interval, make
// one fetch between them: the others find it done when they get the slot.
func TestExplore2ConcurrentUnknownKidsFetchOnce(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	cfg := IssuerConfig{Issuer: idp.Issuer(), Audiences: []string{oidctest.Audience}, JWKSURL: idp.JWKSURL()}
	ctx := context.Background()
	if _, err := v.Verify(ctx, idp.Token(t, "ec-1", idp.Claims(clock.Now(), "a")), []IssuerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	idp.AddEC(t, "ec-2", elliptic.P256())
	tok := idp.Token(t, "ec-2", idp.Claims(clock.Now(), "a"))
	clock.Advance(DefaultMinRefetchInterval)
	before := idp.JWKSFetches()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := v.Verify(ctx, tok, []IssuerConfig{cfg}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := idp.JWKSFetches() - before; n != 1 {
		t.Errorf("%d fetches for 8 concurrent tokens of a new kid, want 1", n)
	}
}
