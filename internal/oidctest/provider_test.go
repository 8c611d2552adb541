package oidctest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/internal/oidctest"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// publicKeys parses a JWKS the way a relying party would: kid → public key.
func publicKeys(t *testing.T, jwks []byte) map[string]any {
	t.Helper()
	var doc struct {
		Keys []struct{ Kty, Kid, Crv, X, Y, N, E string }
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatal(err)
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keys := map[string]any{}
	for _, k := range doc.Keys {
		switch k.Kty {
		case "EC":
			curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[k.Crv]
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, dec(k.X), dec(k.Y)))
			if err != nil {
				t.Fatalf("key %s: %v", k.Kid, err)
			}
			keys[k.Kid] = pub
		case "RSA":
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k.N)), E: int(new(big.Int).SetBytes(dec(k.E)).Int64())}
		}
	}
	return keys
}

func TestDiscoveryPointsAtJWKS(t *testing.T) {
	p := oidctest.New(t)
	code, body := get(t, p.Issuer()+"/.well-known/openid-configuration")
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || code != http.StatusOK {
		t.Fatalf("discovery: %d %s (%v)", code, body, err)
	}
	if doc.Issuer != p.Issuer() || doc.JWKSURI != p.JWKSURL() {
		t.Errorf("discovery %+v, issuer %s", doc, p.Issuer())
	}
	code, body = get(t, doc.JWKSURI)
	if code != http.StatusOK || string(body) != string(p.JWKS()) {
		t.Errorf("jwks: %d %s, want %s", code, body, p.JWKS())
	}
	if p.DiscoveryFetches() != 1 || p.JWKSFetches() != 1 {
		t.Errorf("fetches: discovery %d, jwks %d; want 1 and 1", p.DiscoveryFetches(), p.JWKSFetches())
	}
}

func TestTokensVerifyAgainstServedKeys(t *testing.T) {
	p := oidctest.New(t)
	p.AddEC(t, "ec-384", elliptic.P384())
	p.AddRSA(t, "rsa-1")
	_, body := get(t, p.JWKSURL())
	keys := publicKeys(t, body)
	keyfunc := func(tok *jwt.Token) (any, error) { return keys[tok.Header["kid"].(string)], nil }
	now := time.Now()
	for kid, alg := range map[string]string{oidctest.DefaultKID: "ES256", "ec-384": "ES384", "rsa-1": "RS256"} {
		claims := p.Claims(now, "alice")
		claims["groups"] = []string{"ops"}
		tok, err := jwt.Parse(p.Token(t, kid, claims), keyfunc, jwt.WithValidMethods([]string{alg}),
			jwt.WithIssuer(p.Issuer()), jwt.WithAudience(oidctest.Audience), jwt.WithExpirationRequired())
		if err != nil {
			t.Errorf("%s: %v", kid, err)
			continue
		}
		if sub, _ := tok.Claims.GetSubject(); sub != "alice" || tok.Header["kid"] != kid {
			t.Errorf("%s: sub %q, header %v", kid, sub, tok.Header)
		}
	}
	// A token of one key does not verify with another.
	tok := p.Token(t, "ec-384", p.Claims(now, "alice"))
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return keys[oidctest.DefaultKID], nil }); err == nil {
		t.Error("token verified with another key")
	}
}

func TestRemoveKeyAndBrokenJWKS(t *testing.T) {
	p := oidctest.New(t)
	p.AddEC(t, "ec-2", elliptic.P256())
	p.RemoveKey(oidctest.DefaultKID)
	if p.Key(oidctest.DefaultKID) != nil || p.Key("ec-2") == nil {
		t.Error("Key after RemoveKey")
	}
	_, body := get(t, p.JWKSURL())
	if keys := publicKeys(t, body); len(keys) != 1 || keys["ec-2"] == nil {
		t.Errorf("jwks after RemoveKey: %s", body)
	}
	p.SetJWKSBroken(true)
	if code, _ := get(t, p.JWKSURL()); code != http.StatusBadGateway {
		t.Errorf("broken jwks: %d, want 502", code)
	}
	p.SetJWKSBroken(false)
	if code, _ := get(t, p.JWKSURL()); code != http.StatusOK {
		t.Errorf("repaired jwks: %d, want 200", code)
	}
	if p.JWKSFetches() != 3 || p.DiscoveryFetches() != 0 {
		t.Errorf("fetches: jwks %d, discovery %d; want 3 and 0", p.JWKSFetches(), p.DiscoveryFetches())
	}
}
