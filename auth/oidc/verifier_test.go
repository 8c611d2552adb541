package oidc

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// issuerConfig admits idp's tokens for the audience oidctest.Claims uses.
func issuerConfig(idp *oidctest.Provider) IssuerConfig {
	return IssuerConfig{Issuer: idp.Issuer(), Audiences: []string{oidctest.Audience}}
}

// groupsVerifier returns a provider, a test clock, a verifier on that
// clock and an issuer config admitting the provider's tokens with their
// "groups" claim.
func groupsVerifier(t *testing.T) (*oidctest.Provider, *testclock.Clock, *Verifier, IssuerConfig) {
	idp := oidctest.New(t)
	clock := testclock.New()
	cfg := issuerConfig(idp)
	cfg.GroupsClaim = "groups"
	return idp, clock, &Verifier{Now: clock.Now}, cfg
}

func TestVerifyViaDiscovery(t *testing.T) {
	idp, clock, v, cfg := groupsVerifier(t)
	c := idp.Claims(clock.Now(), "alice")
	c["groups"] = []string{"ops", "dev"}
	p, err := v.Verify(context.Background(), idp.Token(t, "ec-1", c), []IssuerConfig{{Issuer: "https://other"}, cfg})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != PrincipalID(idp.Issuer(), "alice") || len(p.ID) != 64 || p.Subject != "alice" ||
		strings.Join(p.Groups, ",") != "ops,dev" {
		t.Errorf("principal %+v", p)
	}
	// A second token uses the cache.
	if _, err := v.Verify(context.Background(), idp.Token(t, "ec-1", idp.Claims(clock.Now(), "bob")), []IssuerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	if idp.DiscoveryFetches() != 1 || idp.JWKSFetches() != 1 {
		t.Errorf("fetches: discovery %d, jwks %d; want 1 and 1", idp.DiscoveryFetches(), idp.JWKSFetches())
	}
	// After the cache TTL the keys are fetched again.
	clock.Advance(DefaultCacheTTL)
	if _, err := v.Verify(context.Background(), idp.Token(t, "ec-1", idp.Claims(clock.Now(), "bob")), []IssuerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	if idp.JWKSFetches() != 2 {
		t.Errorf("jwks fetches after TTL: %d, want 2", idp.JWKSFetches())
	}
}

func TestPrincipalIDIsSHA256(t *testing.T) {
	sum := sha256.Sum256([]byte("https://idp.example|alice"))
	if got := PrincipalID("https://idp.example", "alice"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("PrincipalID = %q", got)
	}
}

func TestVerifyRefetchOnUnknownKid(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	cfg := issuerConfig(idp)
	cfg.JWKSURL = idp.JWKSURL() // no discovery
	ctx := context.Background()
	if _, err := v.Verify(ctx, idp.Token(t, "ec-1", idp.Claims(clock.Now(), "a")), []IssuerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	idp.AddEC(t, "ec-2", elliptic.P256()) // rotation at the provider
	tok2 := idp.Token(t, "ec-2", idp.Claims(clock.Now(), "a"))
	// Within MinRefetchInterval the unknown kid does not cause a fetch.
	if _, err := v.Verify(ctx, tok2, []IssuerConfig{cfg}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid within the refetch interval: err = %v", err)
	}
	if idp.JWKSFetches() != 1 {
		t.Fatalf("jwks fetched %d times, want 1", idp.JWKSFetches())
	}
	clock.Advance(DefaultMinRefetchInterval)
	if _, err := v.Verify(ctx, tok2, []IssuerConfig{cfg}); err != nil {
		t.Fatalf("rotated key after refetch: %v", err)
	}
	// A kid the provider does not have either: one refetch, then refused.
	clock.Advance(DefaultMinRefetchInterval)
	idp.AddEC(t, "ghost", elliptic.P256())
	ghost := idp.Token(t, "ghost", idp.Claims(clock.Now(), "a"))
	idp.RemoveKey("ghost")
	before := idp.JWKSFetches()
	if _, err := v.Verify(ctx, ghost, []IssuerConfig{cfg}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid: err = %v", err)
	}
	if _, err := v.Verify(ctx, ghost, []IssuerConfig{cfg}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid again: err = %v", err)
	}
	if got := idp.JWKSFetches() - before; got != 1 {
		t.Errorf("unknown kid caused %d fetches, want 1", got)
	}
	// With the JWKS down, a cached key stays usable past the TTL (see
	// TestVerifyKeepsStaleKeysWhenJWKSFails); an unknown kid is keys
	// unavailable.
	idp.SetJWKSBroken(true)
	clock.Advance(DefaultCacheTTL)
	if _, err := v.Verify(ctx, tok2, []IssuerConfig{cfg}); err != nil {
		t.Errorf("jwks down, cached key: err = %v", err)
	}
	clock.Advance(DefaultMinRefetchInterval)
	idp.AddEC(t, "ec-3", elliptic.P256())
	if _, err := v.Verify(ctx, idp.Token(t, "ec-3", idp.Claims(clock.Now(), "a")), []IssuerConfig{cfg}); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("jwks down, unknown kid: err = %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	idp := oidctest.New(t)
	idp.AddRSA(t, "rsa-1")
	idp.AddEC(t, "ec-384", elliptic.P384())
	clock := testclock.New()
	now := clock.Now()
	cfg := issuerConfig(idp)
	with := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := idp.Claims(now, "alice")
		f(c)
		return c
	}
	noKid := jwt.NewWithClaims(jwt.SigningMethodES256, idp.Claims(now, "a"))
	noKidTok, _ := noKid.SignedString(idp.Key("ec-1"))
	parts := strings.Split(idp.Token(t, "ec-1", idp.Claims(now, "a")), ".")
	otherSig := strings.Split(idp.Token(t, "ec-1", idp.Claims(now, "b")), ".")[2]

	for _, c := range []struct {
		name    string
		token   string
		issuers []IssuerConfig
		want    error
	}{
		{"no issuers", idp.Token(t, "ec-1", idp.Claims(now, "a")), nil, ErrNoIssuers},
		{"garbage", "x.y.z", []IssuerConfig{cfg}, ErrInvalidToken},
		{"unknown issuer", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["iss"] = "https://evil" })), []IssuerConfig{cfg}, ErrIssuerNotAllowed},
		{"no issuer", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { delete(c, "iss") })), []IssuerConfig{cfg}, ErrIssuerNotAllowed},
		{"RS256 not allowed by default", idp.Token(t, "rsa-1", idp.Claims(now, "a")), []IssuerConfig{cfg}, ErrInvalidToken},
		{"ES384 not allowed by default", idp.Token(t, "ec-384", idp.Claims(now, "a")), []IssuerConfig{cfg}, ErrInvalidToken},
		{"no kid", noKidTok, []IssuerConfig{cfg}, ErrInvalidToken},
		{"signature of other claims", parts[0] + "." + parts[1] + "." + otherSig, []IssuerConfig{cfg}, ErrInvalidToken},
		{"expired", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-61 * time.Second).Unix() })), []IssuerConfig{cfg}, ErrInvalidToken},
		{"no exp", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { delete(c, "exp") })), []IssuerConfig{cfg}, ErrInvalidToken},
		{"issued in the future", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() })), []IssuerConfig{cfg}, ErrInvalidToken},
		{"nbf in the future", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), []IssuerConfig{cfg}, ErrInvalidToken},
		{"wrong audience", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["aud"] = "other" })), []IssuerConfig{cfg}, ErrInvalidToken},
		{"no subject", idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { delete(c, "sub") })), []IssuerConfig{cfg}, ErrInvalidToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := &Verifier{Now: clock.Now}
			_, err := v.Verify(context.Background(), c.token, c.issuers)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), c.token) {
				t.Error("error text contains the token")
			}
		})
	}
	// Within the skew, and with other algorithms allowed.
	v := &Verifier{Now: clock.Now, AllowedAlgs: []string{"ES256", "ES384", "RS256"}}
	for name, tok := range map[string]string{
		"exp 59 s ago": idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-59 * time.Second).Unix() })),
		"RS256":        idp.Token(t, "rsa-1", idp.Claims(now, "a")),
		"ES384":        idp.Token(t, "ec-384", idp.Claims(now, "a")),
		"aud array":    idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["aud"] = []string{"x", "felix"} })),
	} {
		if _, err := v.Verify(context.Background(), tok, []IssuerConfig{cfg}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The key's curve must fit the alg: an ES256 header over a P-384 key.
	if _, err := v.Verify(context.Background(), signWith(t, jwt.SigningMethodES256, "ec-384", idp, jwt.SigningMethodES384), []IssuerConfig{cfg}); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("ES256 header with a P-384 key: err = %v", err)
	}
	// Custom subject claim.
	cfg2 := cfg
	cfg2.SubjectClaim = "email"
	p, err := v.Verify(context.Background(), idp.Token(t, "ec-1", with(func(c jwt.MapClaims) { c["email"] = "a@example.com" })), []IssuerConfig{cfg2})
	if err != nil || p.Subject != "a@example.com" {
		t.Errorf("subject claim email: %+v, %v", p, err)
	}
}

// signWith returns a token whose header names method m and kid, signed
// with idp's key kid by the algorithm fitting that key (sig).
func signWith(t *testing.T, m jwt.SigningMethod, kid string, idp *oidctest.Provider, sig jwt.SigningMethod) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, idp.Claims(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "a"))
	tok.Header["kid"] = kid
	signing, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sig.Sign(signing, idp.Key(kid))
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(s)
}

// A provider whose JWKS endpoint fails (or serves no usable key) when the
// cached keys go stale must not lock everyone out: the cached keys stay in
// use until a fetch succeeds, and the failing endpoint is asked at most
// once per MinRefetchInterval, not once per exchange.
func TestVerifyKeepsStaleKeysWhenJWKSFails(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	cfg := issuerConfig(idp) // via discovery
	ctx := context.Background()
	verify := func(what string) {
		t.Helper()
		if _, err := v.Verify(ctx, idp.Token(t, "ec-1", idp.Claims(clock.Now(), "a")), []IssuerConfig{cfg}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	verify("first")
	idp.SetJWKSBroken(true)
	clock.Advance(DefaultCacheTTL)
	before := idp.JWKSFetches()
	verify("stale keys, jwks down")
	verify("stale keys, jwks down, again")
	if got := idp.JWKSFetches() - before; got != 1 {
		t.Errorf("jwks fetched %d times while down within the refetch interval, want 1", got)
	}
	clock.Advance(DefaultMinRefetchInterval)
	verify("stale keys, jwks still down")
	if got := idp.JWKSFetches() - before; got != 2 {
		t.Errorf("jwks fetched %d times, want 2", got)
	}
	// Back up: the next fetch replaces the keys (a rotated-out key goes).
	idp.SetJWKSBroken(false)
	idp.AddEC(t, "ec-2", elliptic.P256())
	clock.Advance(DefaultMinRefetchInterval)
	if _, err := v.Verify(ctx, idp.Token(t, "ec-2", idp.Claims(clock.Now(), "a")), []IssuerConfig{cfg}); err != nil {
		t.Fatalf("new key after recovery: %v", err)
	}
	tok1 := idp.Token(t, "ec-1", idp.Claims(clock.Now(), "a"))
	idp.RemoveKey("ec-1")
	clock.Advance(DefaultCacheTTL)
	if _, err := v.Verify(ctx, tok1, []IssuerConfig{cfg}); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("key removed by the provider still accepted: %v", err)
	}
}

// Keys unavailable with nothing cached is its own error.
func TestVerifyKeysUnavailableWithoutCache(t *testing.T) {
	idp := oidctest.New(t)
	idp.SetJWKSBroken(true)
	v := &Verifier{}
	if _, err := v.Verify(context.Background(), idp.Token(t, "ec-1", idp.Claims(time.Now(), "a")), []IssuerConfig{issuerConfig(idp)}); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("jwks down, nothing cached: err = %v", err)
	}
}
