package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// The principal id is hex(sha256(issuer + "|" + subject)) (the
// reference's, and operators key grants by it), so an issuer holding '|'
// makes ids ambiguous: issuer "https://a|b" with subject "c" and issuer
// "https://a" with subject "b|c" were the same principal, and a tenant
// trusting both would give one's grants to the other. An issuer with '|'
// is refused as a configuration error (IssuerConfig.Validate, and Verify
// for a token naming it); a subject may hold '|', since the first '|'
// then always ends the issuer. Ordinary ids are unchanged.
func TestPrincipalIDsAreUnambiguous(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	plain := IssuerConfig{Issuer: "https://a", Audiences: []string{oidctest.Audience}, JWKSURL: idp.JWKSURL()}
	piped := IssuerConfig{Issuer: "https://a|b", Audiences: []string{oidctest.Audience}, JWKSURL: idp.JWKSURL()}
	issuers := []IssuerConfig{plain, piped}
	token := func(iss, sub string) string {
		c := idp.Claims(clock.Now(), sub)
		c["iss"] = iss
		return idp.Token(t, oidctest.DefaultKID, c)
	}
	ctx := context.Background()
	p1, err1 := v.Verify(ctx, token("https://a|b", "c"), issuers)
	p2, err2 := v.Verify(ctx, token("https://a", "b|c"), issuers)
	if err1 == nil && err2 == nil && p1.ID == p2.ID {
		t.Fatalf("issuer %q subject %q and issuer %q subject %q share the principal id %s",
			p1.Issuer, p1.Subject, p2.Issuer, p2.Subject, p1.ID)
	}
	if !errors.Is(err1, ErrIssuerConfig) {
		t.Errorf("token of an issuer holding '|': err = %v, want ErrIssuerConfig", err1)
	}
	if err2 != nil {
		t.Fatalf("subject holding '|': %v", err2)
	}
	sum := sha256.Sum256([]byte("https://a|b|c"))
	if p2.ID != hex.EncodeToString(sum[:]) {
		t.Errorf("ordinary id changed: %s", p2.ID)
	}
	if err := piped.Validate(); !errors.Is(err, ErrIssuerConfig) {
		t.Errorf("Validate of an issuer holding '|': %v", err)
	}
	if err := plain.Validate(); err != nil {
		t.Errorf("Validate of an ordinary issuer: %v", err)
	}
	for _, bad := range []IssuerConfig{{Audiences: []string{"x"}}, {Issuer: "https://a"}} {
		if err := bad.Validate(); !errors.Is(err, ErrIssuerConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrIssuerConfig", bad, err)
		}
	}
}
