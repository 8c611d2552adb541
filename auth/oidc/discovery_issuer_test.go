package oidc

import (
	"context"
	"errors"
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// sharedDiscovery is the setting of the tests below: one provider, and two
// issuer configurations naming its discovery URL, good (the issuer its
// document names) and other (another issuer), with other's token.
type sharedDiscovery struct {
	idp         *oidctest.Provider
	clock       *testclock.Clock
	v           *Verifier
	good, other IssuerConfig
	otherToken  string
}

func newSharedDiscovery(t *testing.T) *sharedDiscovery {
	idp := oidctest.New(t)
	clock := testclock.New()
	good := issuerConfig(idp)
	good.DiscoveryURL = idp.Issuer() + "/.well-known/openid-configuration"
	other := IssuerConfig{Issuer: "https://other.example", Audiences: good.Audiences, DiscoveryURL: good.DiscoveryURL}
	c := idp.Claims(clock.Now(), "mallory")
	c["iss"] = other.Issuer
	return &sharedDiscovery{idp: idp, clock: clock, v: &Verifier{Now: clock.Now}, good: good, other: other, otherToken: idp.Token(t, "ec-1", c)}
}

// goodToken is a token of good's issuer for sub.
func (d *sharedDiscovery) goodToken(t *testing.T, sub string) string {
	return d.idp.Token(t, "ec-1", d.idp.Claims(d.clock.Now(), sub))
}

// The discovery document's issuer must equal the configured issuer
// (OpenID Connect Discovery 1.0 §4.3) for every configuration that uses
// it, not only the first one that made the document be fetched: a second
// issuer configuration naming the same discovery URL (another tenant's, or
// a typo) must not inherit the first one's check through the cache, or
// tokens whose iss is that second issuer would verify against the first
// provider's keys.
func TestDiscoveryIssuerCheckedPerConfiguredIssuer(t *testing.T) {
	d := newSharedDiscovery(t)
	ctx := context.Background()
	if _, err := d.v.Verify(ctx, d.goodToken(t, "alice"), []IssuerConfig{d.good}); err != nil {
		t.Fatalf("token of the matching issuer: %v", err)
	}
	_, err := d.v.Verify(ctx, d.otherToken, []IssuerConfig{d.good, d.other})
	if !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("token of an issuer whose discovery document names another issuer: err %v, want ErrKeysUnavailable", err)
	}

	// The first configuration still works from the cache, and the
	// mismatch did not spoil it.
	if _, err := d.v.Verify(ctx, d.goodToken(t, "bob"), []IssuerConfig{d.good, d.other}); err != nil {
		t.Fatalf("matching issuer after the mismatch: %v", err)
	}
}

// The other order: a configuration whose discovery document names another
// issuer is refused first; that refusal is not a failure of the URL, so
// the configuration of the issuer the document names still verifies at
// once (not after MinRefetchInterval).
func TestDiscoveryIssuerMismatchDoesNotRefuseTheMatchingIssuer(t *testing.T) {
	d := newSharedDiscovery(t)
	ctx := context.Background()
	if _, err := d.v.Verify(ctx, d.otherToken, []IssuerConfig{d.good, d.other}); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("token of an issuer whose discovery document names another issuer: err %v, want ErrKeysUnavailable", err)
	}
	if _, err := d.v.Verify(ctx, d.goodToken(t, "alice"), []IssuerConfig{d.good, d.other}); err != nil {
		t.Fatalf("token of the matching issuer after another issuer's mismatch: %v", err)
	}
}
