package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/wire"
)

// fakeIdP is an OIDC identity provider on 127.0.0.1: an ES256 key, its
// JWKS and the discovery document.
type fakeIdP struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &fakeIdP{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": idp.srv.URL, "jwks_uri": idp.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		x, y := make([]byte, 32), make([]byte, 32)
		key.X.FillBytes(x)
		key.Y.FillBytes(y)
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1", "x": b64(x), "y": b64(y)}}})
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

// token signs an upstream ID token for sub with groups.
func (p *fakeIdP) token(t *testing.T, sub string, groups ...string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": p.srv.URL, "aud": "felix", "sub": sub, "groups": groups,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A user of an OIDC identity provider exchanges its ID token at the
// embedded control plane for a Felix token with the permissions its groups
// are granted (--oidc-config), and uses it on the broker.
func TestServeOIDCTokenExchange(t *testing.T) {
	idp := newFakeIdP(t)
	cfg := writeConfig(t, `
tenants:
  acme:
    issuers:
      - issuer: `+idp.srv.URL+`
        audiences: [felix]
        groups_claim: groups
    grants:
      "group:writers": ["stream.publish:stream:acme/orders/*"]
      "*": ["cache.read:cache:acme/*/*"]
`)
	dir := t.TempDir()
	addr, b, ca, cp := startSecureServe(t, dir, "--oidc-config", cfg, "--stream", "acme/orders/created")

	exchange := func(upstream string) (int, string) {
		return call(t, "POST", cp.base+"/v1/tenants/acme/token/exchange", upstream, "")
	}
	if code, body := exchange(""); code != http.StatusUnauthorized {
		t.Fatalf("exchange without a token: %d %s", code, body)
	}
	if code, body := exchange("not-a-jwt"); code != http.StatusUnauthorized {
		t.Fatalf("exchange with garbage: %d %s", code, body)
	}
	if code, body := call(t, "POST", cp.base+"/v1/tenants/other/token/exchange", idp.token(t, "ann", "writers"), ""); code != http.StatusForbidden {
		t.Fatalf("exchange for a tenant without identity providers: %d %s", code, body)
	}
	code, body := exchange(idp.token(t, "ann", "writers"))
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %s", code, body)
	}
	var reply struct {
		FelixToken string `json:"felix_token"`
		ExpiresIn  int    `json:"expires_in"`
		TokenType  string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.FelixToken == "" || reply.TokenType != "Bearer" {
		t.Fatalf("exchange reply %s (%v)", body, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, TenantID: "acme", Token: reply.FelixToken,
		Reconnect: client.ReconnectPolicy{Disabled: true}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial with the exchanged token: %v", err)
	}
	defer c.Close()
	if err := c.Publish(ctx, "orders", "created", []byte("o-1"), client.WithAck(wire.AckPerMessage)); err != nil {
		t.Fatalf("publish with the exchanged token: %v", err)
	}
	if _, err := c.Subscribe(ctx, "orders", "created"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("subscribe without the grant: %v, want forbidden", err)
	}
	st, _ := b.Stream("acme", "orders", "created")
	if n := st.Stats().Published; n != 1 {
		t.Fatalf("published %d, want 1", n)
	}
}
