package oidc

import (
	"context"
	"errors"
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// The discovery document's issuer must equal the configured issuer
// (OpenID Connect Discovery 1.0 §4.3) for every configuration that uses
// it, not only the first one that made the document be fetched: a second
// issuer configuration naming the same discovery URL (another tenant's, or
// a typo) must not inherit the first one's check through the cache, or
// tokens whose iss is that second issuer would verify against the first
// provider's keys.
func TestDiscoveryIssuerCheckedPerConfiguredIssuer(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	ctx := context.Background()
	discURL := idp.Issuer() + "/.well-known/openid-configuration"

	good := issuerConfig(idp)
	good.DiscoveryURL = discURL
	if _, err := v.Verify(ctx, idp.Token(t, "ec-1", idp.Claims(clock.Now(), "alice")), []IssuerConfig{good}); err != nil {
		t.Fatalf("token of the matching issuer: %v", err)
	}

	other := IssuerConfig{Issuer: "https://other.example", Audiences: good.Audiences, DiscoveryURL: discURL}
	c := idp.Claims(clock.Now(), "mallory")
	c["iss"] = other.Issuer
	_, err := v.Verify(ctx, idp.Token(t, "ec-1", c), []IssuerConfig{good, other})
	if !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("token of an issuer whose discovery document names another issuer: err %v, want ErrKeysUnavailable", err)
	}

	// The first configuration still works from the cache, and the
	// mismatch did not spoil it.
	if _, err := v.Verify(ctx, idp.Token(t, "ec-1", idp.Claims(clock.Now(), "bob")), []IssuerConfig{good, other}); err != nil {
		t.Fatalf("matching issuer after the mismatch: %v", err)
	}
}

// The other order: a configuration whose discovery document names another
// issuer is refused first; that refusal is not a failure of the URL, so
// the configuration of the issuer the document names still verifies at
// once (not after MinRefetchInterval).
func TestDiscoveryIssuerMismatchDoesNotRefuseTheMatchingIssuer(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	ctx := context.Background()
	discURL := idp.Issuer() + "/.well-known/openid-configuration"
	good := issuerConfig(idp)
	good.DiscoveryURL = discURL
	other := IssuerConfig{Issuer: "https://other.example", Audiences: good.Audiences, DiscoveryURL: discURL}

	c := idp.Claims(clock.Now(), "mallory")
	c["iss"] = other.Issuer
	if _, err := v.Verify(ctx, idp.Token(t, "ec-1", c), []IssuerConfig{good, other}); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("token of an issuer whose discovery document names another issuer: err %v, want ErrKeysUnavailable", err)
	}
	if _, err := v.Verify(ctx, idp.Token(t, "ec-1", idp.Claims(clock.Now(), "alice")), []IssuerConfig{good, other}); err != nil {
		t.Fatalf("token of the matching issuer after another issuer's mismatch: %v", err)
	}
}
