package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/oidctest"
)

// signJSON signs header and payload, raw JSON texts as given (duplicated
// names, case variants), with the provider's ES256 key kid.
func signJSON(t *testing.T, idp *oidctest.Provider, kid, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodES256.Sign(input, idp.Key(kid))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

// A token naming a claim (or a header member) twice is invalid: jwt's
// MapClaims keep the last one, another verifier the first, so one signed
// token would name two subjects. Names are compared exactly, after JSON
// unescaping.
func TestVerifyRefusesDuplicateNames(t *testing.T) {
	idp, clock, v, cfg := groupsVerifier(t)
	header := `{"alg":"ES256","kid":"` + oidctest.DefaultKID + `"}`
	payload := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","groups":["dev"],"iat":%d,"exp":%d%s}`,
			idp.Issuer(), oidctest.Audience, clock.Now().Unix(), clock.Now().Unix()+3600, extra)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, signJSON(t, idp, oidctest.DefaultKID, header, payload("")), []IssuerConfig{cfg}); err != nil {
		t.Fatalf("control token: %v", err)
	}
	for _, tc := range []struct{ name, header, payload string }{
		{"sub twice", header, payload(`,"sub":"mallory"`)},
		{"sub escaped", header, payload(`,"s\u0075b":"mallory"`)},
		{"iss twice", header, payload(`,"iss":"https://evil"`)},
		{"aud twice", header, payload(`,"aud":"other"`)},
		{"exp twice", header, payload(`,"exp":9999999999`)},
		{"groups twice", header, payload(`,"groups":["admins"]`)},
		{"nested duplicate", header, payload(`,"address":{"country":"a","country":"b"}`)},
		{"kid twice in header", `{"alg":"ES256","kid":"nope","kid":"` + oidctest.DefaultKID + `"}`, payload("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signJSON(t, idp, oidctest.DefaultKID, tc.header, tc.payload)
			p, err := v.Verify(ctx, tok, []IssuerConfig{cfg})
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want %v", p, err, ErrInvalidToken)
			}
		})
	}
}

// Claim names are matched exactly: "SUB" or "GROUPS" beside sub and groups
// are unknown claims, ignored.
func TestVerifyClaimNamesAreExact(t *testing.T) {
	idp, clock, v, cfg := groupsVerifier(t)
	c := idp.Claims(clock.Now(), "alice")
	c["groups"] = []string{"dev"}
	c["SUB"], c["ſub"], c["GROUPS"], c["Groups"] = "mallory", "mallory", []string{"admins"}, []string{"admins"}
	c["ISS"], c["AUD"], c["EXP"] = "https://evil", "other", 1
	p, err := v.Verify(context.Background(), idp.Token(t, oidctest.DefaultKID, c), []IssuerConfig{cfg})
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || !slices.Equal(p.Groups, []string{"dev"}) {
		t.Errorf("principal %+v, want subject alice, groups [dev]", p)
	}
}

// ecJWK is the JWK text of a new P-256 key with kid, followed by extra
// members, its x coordinate (base64url) and its public key.
func ecJWK(t *testing.T, kid, extra string) (text, x string, pub *ecdsa.PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := k.PublicKey.Bytes() // 0x04 || x || y
	enc := base64.RawURLEncoding
	x = enc.EncodeToString(pt[1:33])
	return fmt.Sprintf(`{"kty":"EC","kid":%q,"use":"sig","crv":"P-256","x":%q,"y":%q%s}`,
		kid, x, enc.EncodeToString(pt[33:]), extra), x, &k.PublicKey
}

// A JWKS's member names are matched exactly ("KID" or "X" are unknown
// members, not kid or x), and a name given twice in one object refuses the
// document.
func TestParseJWKSMemberNamesAreExact(t *testing.T) {
	other, otherX, _ := ecJWK(t, "o", "")
	for _, tc := range []struct{ name, extra string }{
		{"KID", `,"KID":"evil"`},
		{"X", `,"X":"` + otherX + `"`},
		{"USE", `,"USE":"enc"`},
		{"Kelvin kty", `,"\u212Aty":"RSA"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, _, pub := ecJWK(t, "k", tc.extra)
			keys, _, err := parseJWKS([]byte(`{"keys":[`+text+`]}`), DefaultMaxKeysPerJWKS)
			if err != nil {
				t.Fatal(err)
			}
			k, ok := keys["k"]
			if len(keys) != 1 || !ok || !pub.Equal(k.pub) {
				t.Errorf("keys %v, want only k with its own public key", keys)
			}
		})
	}
	kidTwice, _, _ := ecJWK(t, "k", `,"kid":"evil"`)
	xTwice, _, _ := ecJWK(t, "k", `,"x":"`+otherX+`"`)
	for _, tc := range []struct{ name, doc string }{
		{"kid twice", `{"keys":[` + kidTwice + `]}`},
		{"x twice", `{"keys":[` + xTwice + `]}`},
		{"keys twice", `{"keys":[` + other + `],"keys":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := parseJWKS([]byte(tc.doc), DefaultMaxKeysPerJWKS); !errors.Is(err, auth.ErrDuplicateName) {
				t.Fatalf("err = %v, want %v", err, auth.ErrDuplicateName)
			}
		})
	}
}

// A discovery document's names are exact too: "JWKS_URI" is not
// jwks_uri, and jwks_uri given twice is refused.
func TestDiscoveryNamesAreExact(t *testing.T) {
	idp := oidctest.New(t)
	var doc string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(srv.Close)
	cfg := IssuerConfig{Issuer: idp.Issuer(), Audiences: []string{oidctest.Audience}, DiscoveryURL: srv.URL}
	ctx := context.Background()
	v := &Verifier{}

	doc = fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q,"JWKS_URI":"http://127.0.0.1:1/evil","ISSUER":"https://evil"}`, idp.Issuer(), idp.JWKSURL())
	if u, err := v.discover(ctx, cfg, srv.URL); err != nil || u != idp.JWKSURL() {
		t.Errorf("case variants: jwks_uri %q, err %v; want %q", u, err, idp.JWKSURL())
	}
	doc = fmt.Sprintf(`{"issuer":%q,"JWKS_URI":%q}`, idp.Issuer(), idp.JWKSURL())
	if u, err := v.discover(ctx, cfg, srv.URL); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf(`only "JWKS_URI": jwks_uri %q, err %v; want %v`, u, err, ErrKeysUnavailable)
	}
	doc = fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q,"jwks_uri":"http://127.0.0.1:1/evil"}`, idp.Issuer(), idp.JWKSURL())
	if u, err := v.discover(ctx, cfg, srv.URL); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("jwks_uri twice: jwks_uri %q, err %v; want %v", u, err, ErrKeysUnavailable)
	}
}
