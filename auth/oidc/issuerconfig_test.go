package oidc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// An empty (or blank) audience is a configuration error: with audiences
// [""], a token whose aud is "" (which any client of the provider may
// obtain or which means "no audience") would be accepted. A blank issuer
// is refused as an empty one.
func TestValidateRefusesEmptyAudience(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  IssuerConfig
		want string
	}{
		{"empty audience", IssuerConfig{Issuer: "https://a", Audiences: []string{""}}, `issuer "https://a": audience 0 is empty`},
		{"empty audience among others", IssuerConfig{Issuer: "https://a", Audiences: []string{"felix", ""}}, `issuer "https://a": audience 1 is empty`},
		{"blank audience", IssuerConfig{Issuer: "https://a", Audiences: []string{" \t"}}, `issuer "https://a": audience 0 is empty`},
		{"blank issuer", IssuerConfig{Issuer: "  ", Audiences: []string{"felix"}}, "empty issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, ErrIssuerConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %v containing %q", err, ErrIssuerConfig, tc.want)
			}
		})
	}
	if err := (IssuerConfig{Issuer: "https://a", Audiences: []string{"felix", "other"}}).Validate(); err != nil {
		t.Errorf("Validate of two audiences: %v", err)
	}

	// Verify refuses a token of an issuer so configured, aud "" included.
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	cfg := IssuerConfig{Issuer: idp.Issuer(), Audiences: []string{""}, JWKSURL: idp.JWKSURL()}
	c := idp.Claims(clock.Now(), "alice")
	c["aud"] = ""
	p, err := v.Verify(context.Background(), idp.Token(t, oidctest.DefaultKID, c), []IssuerConfig{cfg})
	if !errors.Is(err, ErrIssuerConfig) {
		t.Fatalf("token with aud \"\" for audiences [\"\"]: Verify = %+v, %v; want %v", p, err, ErrIssuerConfig)
	}
}
