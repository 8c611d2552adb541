package e2e

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/auth/oidc"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/server"
)

// oidcSetup is a broker verifying Felix tokens of signer, and a control
// plane (real store, real HTTP on 127.0.0.1) with the token exchange
// mounted as `felix serve --oidc-config` mounts it: issuers and grants per
// tenant, "*", principal ids and "group:<name>".
type oidcSetup struct {
	idp    *oidctest.Provider
	signer *auth.Signer
	tb     *testbroker.Broker
	cp     string // control plane base URL
}

func startOIDC(t *testing.T, verifier *oidc.Verifier, grants map[string][]string) *oidcSetup {
	t.Helper()
	idp := oidctest.New(t)
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := controlplane.Open(filepath.Join(t.TempDir(), controlplane.FileName), controlplane.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	issuers := []oidc.IssuerConfig{{Issuer: idp.Issuer(), Audiences: []string{oidctest.Audience}, GroupsClaim: "groups"}}
	h := &oidc.ExchangeHandler{
		Signer:   sg,
		Verifier: verifier,
		Issuers: func(_ context.Context, tenant string) ([]oidc.IssuerConfig, error) {
			if tenant != "acme" {
				return nil, oidc.ErrTenantNotAllowed
			}
			return issuers, nil
		},
		Permissions: func(_ context.Context, _ string, p *oidc.Principal) ([]string, error) {
			perms := append([]string(nil), grants["*"]...)
			perms = append(perms, grants[p.ID]...)
			for _, g := range p.Groups {
				perms = append(perms, grants["group:"+g]...)
			}
			return perms, nil
		},
	}
	srv, err := controlplane.NewServer(controlplane.Options{Store: st, AdminToken: "admin-secret",
		Mount: map[string]http.Handler{"POST /v1/tenants/{tenant}/token/exchange": h}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	tb := testbroker.Start(t,
		testbroker.WithCaches(cache.Config{}, "acme/web/sessions", "acme/admin/secrets"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: &auth.Verifier{Keys: sg.KeySet()}}}))
	return &oidcSetup{idp: idp, signer: sg, tb: tb, cp: hs.URL}
}

type exchangeReply struct {
	status int
	body   string
	ok     oidc.ExchangeResponse
	err    oidc.ErrorResponse
}

func (s *oidcSetup) exchange(t *testing.T, tenant, upstream, body string) exchangeReply {
	t.Helper()
	req, err := http.NewRequest("POST", s.cp+"/v1/tenants/"+tenant+"/token/exchange", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if upstream != "" {
		req.Header.Set("Authorization", "Bearer "+upstream)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := exchangeReply{status: resp.StatusCode, body: string(b)}
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(b, &r.ok)
	} else {
		err = json.Unmarshal(b, &r.err)
	}
	if err != nil {
		t.Fatalf("exchange reply %d %q: %v", resp.StatusCode, b, err)
	}
	return r
}

func (s *oidcSetup) upstream(t *testing.T, kid string, mutate func(jwt.MapClaims)) string {
	t.Helper()
	c := s.idp.Claims(time.Now(), "ann")
	c["groups"] = []string{"web"}
	if mutate != nil {
		mutate(c)
	}
	return s.idp.Token(t, kid, c)
}

// A user exchanges upstream ID tokens at the control plane: expired ones,
// ones for another audience or issuer, and ones narrowed to nothing are
// refused with the documented status, code and message; a good one yields
// a Felix token for the tenant, the principal's id, exactly the granted
// permissions (narrowed when asked), the signer's lifetime, and works on
// the broker for what it grants and nothing else.
func TestExplore2OIDCExchange(t *testing.T) {
	grants := map[string][]string{
		"*":         {"cache.read:cache:acme/web/*"},
		"group:web": {"cache.write:cache:acme/web/sessions"},
	}
	s := startOIDC(t, nil, grants)
	principal := oidc.PrincipalID(s.idp.Issuer(), "ann")

	cases := []struct {
		name         string
		tenant, body string
		token        string
		status       int
		code, msg    string
	}{
		{"no token", "acme", "", "", 401, "unauthorized", "missing bearer token"},
		{"garbage", "acme", "", "not-a-jwt", 401, "unauthorized", "invalid token"},
		{"expired beyond skew", "acme", "", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-2 * time.Minute).Unix()
		}), 401, "unauthorized", "invalid token"},
		{"no exp", "acme", "", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "unauthorized", "invalid token"},
		{"wrong audience", "acme", "", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) { c["aud"] = "someone-else" }), 401, "unauthorized", "invalid token"},
		{"audience array without ours", "acme", "", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }), 401, "unauthorized", "invalid token"},
		{"other issuer", "acme", "", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), 403, "forbidden", "issuer not allowed"},
		{"issued in the future", "acme", "", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() }), 401, "unauthorized", "invalid token"},
		{"tenant without providers", "other", "", s.upstream(t, oidctest.DefaultKID, nil), 403, "forbidden", "tenant not allowed"},
		{"narrowed to nothing", "acme", `{"requested":["stream.publish"]}`, s.upstream(t, oidctest.DefaultKID, nil), 403, "forbidden", "no permissions"},
		{"bad body", "acme", `{"requested":`, s.upstream(t, oidctest.DefaultKID, nil), 400, "validation_error", ""},
	}
	for _, tc := range cases {
		r := s.exchange(t, tc.tenant, tc.token, tc.body)
		if r.status != tc.status || r.err.Code != tc.code || (tc.msg != "" && r.err.Message != tc.msg) {
			t.Errorf("%s: %d %s, want %d %s %q", tc.name, r.status, r.body, tc.status, tc.code, tc.msg)
		}
	}

	// Expired, but within the 60 s of skew: accepted.
	if r := s.exchange(t, "acme", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) {
		c["exp"] = time.Now().Add(-20 * time.Second).Unix()
	}), ""); r.status != 200 {
		t.Errorf("token expired 20 s ago (skew 60 s): %d %s", r.status, r.body)
	}
	// aud as an array containing ours: accepted.
	if r := s.exchange(t, "acme", s.upstream(t, oidctest.DefaultKID, func(c jwt.MapClaims) {
		c["aud"] = []string{"x", oidctest.Audience}
	}), ""); r.status != 200 {
		t.Errorf("aud array with ours: %d %s", r.status, r.body)
	}

	// The good exchange, and what the Felix token says.
	before := time.Now().Truncate(time.Second)
	r := s.exchange(t, "acme", s.upstream(t, oidctest.DefaultKID, nil), "")
	if r.status != 200 || r.ok.TokenType != "Bearer" || r.ok.ExpiresIn != int64(auth.DefaultTTL/time.Second) {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	claims, err := (&auth.Verifier{Keys: s.signer.KeySet()}).Verify(r.ok.FelixToken, "acme")
	if err != nil {
		t.Fatalf("the exchanged token does not verify: %v", err)
	}
	if claims.Subject != principal || claims.Tenant != "acme" {
		t.Errorf("claims sub %q tid %q, want %q acme", claims.Subject, claims.Tenant, principal)
	}
	wantPerms := []string{"cache.read:cache:acme/web/*", "cache.write:cache:acme/web/sessions"}
	if got := slices.Sorted(slices.Values(claims.Perms)); !slices.Equal(got, wantPerms) {
		t.Errorf("perms %v, want %v", got, wantPerms)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt); life != auth.DefaultTTL {
		t.Errorf("token lives %v, want %v", life, auth.DefaultTTL)
	}
	if claims.ExpiresAt.Before(before.Add(auth.DefaultTTL)) || claims.ExpiresAt.After(time.Now().Add(auth.DefaultTTL)) {
		t.Errorf("exp %v, not now + %v", claims.ExpiresAt, auth.DefaultTTL)
	}
	if _, err := (&auth.Verifier{Keys: s.signer.KeySet()}).Verify(r.ok.FelixToken, "other"); !errors.Is(err, auth.ErrWrongTenant) {
		t.Errorf("the exchanged token verified for another tenant: %v", err)
	}

	// Narrowed at the exchange: read only.
	rn := s.exchange(t, "acme", s.upstream(t, oidctest.DefaultKID, nil), `{"requested":["cache.read"]}`)
	if rn.status != 200 {
		t.Fatalf("narrowed exchange: %d %s", rn.status, rn.body)
	}

	// On the broker: the token does what it grants and nothing else.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, s.tb, client.Options{TenantID: "acme", Token: r.ok.FelixToken, RequestTimeout: 5 * time.Second})
	kv := c.Cache("web", "sessions")
	if _, err := kv.Put(ctx, "s1", []byte("v")); err != nil {
		t.Fatalf("put with the exchanged token: %v", err)
	}
	if v, ok, err := kv.Get(ctx, "s1"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("get with the exchanged token: %q %v %v", v, ok, err)
	}
	if _, _, err := c.Cache("admin", "secrets").Get(ctx, "k"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("get outside the grant: %v, want forbidden", err)
	}
	ro := dial(t, s.tb, client.Options{TenantID: "acme", Token: rn.ok.FelixToken, RequestTimeout: 5 * time.Second})
	if _, _, err := ro.Cache("web", "sessions").Get(ctx, "s1"); err != nil {
		t.Errorf("get with the narrowed token: %v", err)
	}
	if _, err := ro.Cache("web", "sessions").Put(ctx, "s1", []byte("w")); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("put with a token narrowed to cache.read: %v, want forbidden", err)
	}
	// Another tenant's streams: the exchanged token authenticates for acme only.
	if other, err := client.Dial(ctx, s.tb.Addr, client.Options{TLS: s.tb.ClientTLS, TenantID: "globex", Token: r.ok.FelixToken,
		Reconnect: client.ReconnectPolicy{Disabled: true}}); err == nil {
		other.Close()
		t.Error("the exchanged token authenticated for another tenant")
	} else if !strings.Contains(err.Error(), "auth failed") {
		t.Errorf("dial for another tenant: %v, want auth failed", err)
	}
}

// The provider rotates its keys: a token naming a kid the exchange has not
// seen is refused while the cached JWKS is younger than the refetch
// interval (10 s), accepted once the interval has passed (one refetch),
// and a token of the removed key is refused after the rotation. Unknown
// kids never make the exchange fetch more than once per interval. The
// clock is injected.
func TestExplore2OIDCRotatedJWKS(t *testing.T) {
	clk := testclock.New()
	clk.Advance(time.Since(clk.Now())) // start at the wall clock: tokens use real time
	v := &oidc.Verifier{Now: clk.Now}
	s := startOIDC(t, v, map[string][]string{"*": {"cache.read:cache:acme/*/*"}})

	old := s.upstream(t, oidctest.DefaultKID, nil)
	if r := s.exchange(t, "acme", old, ""); r.status != 200 {
		t.Fatalf("first exchange: %d %s", r.status, r.body)
	}
	fetches := s.idp.JWKSFetches()

	// Rotation: ec-2 in, ec-1 out.
	s.idp.AddEC(t, "ec-2", elliptic.P256())
	s.idp.RemoveKey(oidctest.DefaultKID)
	fresh := s.upstream(t, "ec-2", nil)
	clk.Advance(2 * time.Second)
	for range 5 {
		if r := s.exchange(t, "acme", fresh, ""); r.status != 401 || r.err.Message != "invalid token" {
			t.Fatalf("new kid within the refetch interval: %d %s", r.status, r.body)
		}
	}
	if n := s.idp.JWKSFetches(); n != fetches {
		t.Fatalf("%d JWKS fetches for unknown kids within the interval", n-fetches)
	}
	// The old key still verifies from the cache until it is refetched.
	if r := s.exchange(t, "acme", old, ""); r.status != 200 {
		t.Errorf("old kid, cache not refreshed yet: %d %s", r.status, r.body)
	}
	clk.Advance(9 * time.Second)
	if r := s.exchange(t, "acme", fresh, ""); r.status != 200 {
		t.Fatalf("new kid after the refetch interval: %d %s", r.status, r.body)
	}
	if n := s.idp.JWKSFetches(); n != fetches+1 {
		t.Fatalf("%d JWKS fetches, want one", n-fetches)
	}
	// The refreshed set no longer has ec-1.
	if r := s.exchange(t, "acme", old, ""); r.status != 401 {
		t.Errorf("removed kid after the refresh: %d %s", r.status, r.body)
	}
	// A kid that never exists: at most one fetch per interval.
	s.idp.AddEC(t, "ghost", elliptic.P256())
	ghost := s.upstream(t, "ghost", nil)
	s.idp.RemoveKey("ghost")
	fetches = s.idp.JWKSFetches()
	for range 10 {
		clk.Advance(time.Second)
		if r := s.exchange(t, "acme", ghost, ""); r.status != 401 {
			t.Fatalf("unknown kid: %d %s", r.status, r.body)
		}
	}
	if n := s.idp.JWKSFetches() - fetches; n > 1 {
		t.Errorf("%d JWKS fetches for one unknown kid over 10 s", n)
	}

	// The provider's JWKS is down: known keys keep working from the cache;
	// an unknown kid is a 500 "issuer keys unavailable".
	s.idp.SetJWKSBroken(true)
	if r := s.exchange(t, "acme", fresh, ""); r.status != 200 {
		t.Errorf("cached key while the JWKS is down: %d %s", r.status, r.body)
	}
	clk.Advance(11 * time.Second)
	if r := s.exchange(t, "acme", ghost, ""); r.status != 500 || r.err.Message != "issuer keys unavailable" {
		t.Errorf("unknown kid while the JWKS is down: %d %s", r.status, r.body)
	}
	s.idp.SetJWKSBroken(false)
}

// The broker's keys come from a JWKS file (--jwks-file): a token of a key
// not in it is refused; once the file holds the new key too and is
// reloaded, the token works; a garbled rewrite keeps the previous keys.
func TestExplore2BrokerJWKSFileReload(t *testing.T) {
	oldKey, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS := func(data []byte) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	jwks := func(sgs ...*auth.Signer) []byte {
		var ks []*auth.KeySet
		for _, s := range sgs {
			ks = append(ks, s.KeySet())
		}
		m, err := auth.Merge(ks...)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	writeJWKS(jwks(oldKey))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := auth.NewKeySource(ctx, auth.KeySourceOptions{File: path})
	if err != nil {
		t.Fatal(err)
	}
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "acme/web/sessions"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: &auth.Verifier{Keys: src}}}))
	token := func(sg *auth.Signer) string {
		tok, err := sg.Issue(auth.Claims{Tenant: "acme", Subject: "svc", Perms: []string{"cache.*:cache:acme/*/*"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	put := func(tok string) error {
		c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS, TenantID: "acme", Token: tok,
			RequestTimeout: 5 * time.Second, Reconnect: client.ReconnectPolicy{Disabled: true}})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Cache("web", "sessions").Put(ctx, "k", []byte("v"))
		return err
	}
	if err := put(token(oldKey)); err != nil {
		t.Fatalf("old key: %v", err)
	}
	if err := put(token(newKey)); err == nil || !strings.Contains(err.Error(), "auth failed") {
		t.Fatalf("new key before the reload: %v, want auth failed", err)
	}
	writeJWKS(jwks(oldKey, newKey))
	if changed, err := src.Reload(ctx); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if err := put(token(newKey)); err != nil {
		t.Fatalf("new key after the reload: %v", err)
	}
	// A half-written file: the previous keys stay.
	writeJWKS([]byte(`{"keys":[{"kty":"OKP"`))
	if changed, err := src.Reload(ctx); changed || err == nil {
		t.Fatalf("reload of a garbled file: %v %v", changed, err)
	}
	if err := put(token(newKey)); err != nil {
		t.Fatalf("new key after a failed reload: %v", err)
	}
	// The old key removed.
	writeJWKS(jwks(newKey))
	if changed, err := src.Reload(ctx); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if err := put(token(oldKey)); err == nil || !strings.Contains(err.Error(), "auth failed") {
		t.Fatalf("old key after its removal: %v, want auth failed", err)
	}
}
