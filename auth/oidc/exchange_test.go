package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/oidctest"
)

// exchangeEnv is a control plane's exchange endpoint on real HTTP, with a
// fake identity provider registered for tenant t1.
type exchangeEnv struct {
	idp     *oidctest.Provider
	srv     *httptest.Server
	signer  *auth.Signer
	auditor *auth.Auditor
	grants  map[string][]string // principal subject → perms
}

func newExchangeEnv(t *testing.T) *exchangeEnv {
	t.Helper()
	env := &exchangeEnv{idp: oidctest.New(t), grants: map[string][]string{}}
	signer, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env.signer = signer
	log := slog.New(slog.DiscardHandler)
	env.auditor = &auth.Auditor{Log: log}
	h := &ExchangeHandler{
		Issuers: func(_ context.Context, tenant string) ([]IssuerConfig, error) {
			switch tenant {
			case "t1":
				cfg := issuerConfig(env.idp)
				cfg.GroupsClaim = "groups"
				return []IssuerConfig{cfg}, nil
			case "empty":
				return nil, nil
			case "broken":
				return nil, errors.New("store down")
			}
			return nil, fmt.Errorf("tenant %s: %w", tenant, ErrTenantNotAllowed)
		},
		Permissions: func(_ context.Context, tenant string, p *Principal) ([]string, error) {
			perms := env.grants[p.Subject]
			for _, g := range p.Groups {
				perms = append(perms, env.grants["group:"+g]...)
			}
			return perms, nil
		},
		Signer:  signer,
		Auditor: env.auditor,
		Log:     log,
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/tenants/{tenant}/token/exchange", h)
	env.srv = httptest.NewServer(mux)
	t.Cleanup(env.srv.Close)
	return env
}

// post exchanges bearer for tenant with body and decodes the reply.
func (env *exchangeEnv) post(t *testing.T, tenant, authz, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.srv.URL+"/v1/tenants/"+tenant+"/token/exchange", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return resp.StatusCode, out
}

func (env *exchangeEnv) upstream(t *testing.T, sub string, groups ...string) string {
	c := env.idp.Claims(time.Now(), sub)
	if len(groups) > 0 {
		c["groups"] = groups
	}
	return env.idp.Token(t, "ec-1", c)
}

// An exchanged token never outlives the upstream token it was exchanged
// for: a session the identity provider ended is not extended by 15 minutes.
func TestExchangedTokenEndsWithUpstream(t *testing.T) {
	env := newExchangeEnv(t)
	env.grants["alice"] = []string{"stream.publish:stream:t1/*/*"}
	v := &auth.Verifier{Keys: env.signer.KeySet()}
	now := time.Now()
	for _, tc := range []struct {
		name        string
		upstreamExp time.Time
		wantIn      int64 // expires_in, ±1 s for the second boundary
	}{
		{"upstream lives longer", now.Add(time.Hour), 900},
		{"upstream ends sooner", now.Add(2 * time.Minute), 120},
		{"upstream within the skew", now.Add(-10 * time.Second), 1},
	} {
		c := env.idp.Claims(now, "alice")
		c["exp"] = tc.upstreamExp.Unix()
		status, reply := env.post(t, "t1", "Bearer "+env.idp.Token(t, "ec-1", c), "")
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %v", tc.name, status, reply)
		}
		in := int64(reply["expires_in"].(float64))
		if in < tc.wantIn-1 || in > tc.wantIn {
			t.Errorf("%s: expires_in %d, want %d", tc.name, in, tc.wantIn)
		}
		claims, err := v.Verify(reply["felix_token"].(string), "t1")
		if tc.wantIn == 1 {
			continue // may be past its exp by the time it is checked
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := claims.ExpiresAt.Sub(claims.IssuedAt); got != time.Duration(in)*time.Second {
			t.Errorf("%s: token lives %v, expires_in says %d s", tc.name, got, in)
		}
		if claims.ExpiresAt.After(tc.upstreamExp.Truncate(time.Second)) {
			t.Errorf("%s: token expires %v, after upstream %v", tc.name, claims.ExpiresAt, tc.upstreamExp)
		}
	}
}

func TestExchangeIssuesFelixToken(t *testing.T) {
	env := newExchangeEnv(t)
	env.grants["alice"] = []string{"stream.publish:stream:t1/*/*", "cache.read:cache:t1/ns/c", "bogus"}
	status, reply := env.post(t, "t1", "Bearer "+env.upstream(t, "alice"), "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, reply)
	}
	if reply["expires_in"] != float64(900) || reply["token_type"] != "Bearer" || len(reply) != 3 {
		t.Errorf("reply %v", reply)
	}
	v := &auth.Verifier{Keys: env.signer.KeySet()}
	claims, err := v.Verify(reply["felix_token"].(string), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != PrincipalID(env.idp.Issuer(), "alice") ||
		!slices.Equal(claims.Perms, []string{"stream.publish:stream:t1/*/*", "cache.read:cache:t1/ns/c"}) {
		t.Errorf("claims %+v", claims)
	}
	if _, err := v.Verify(reply["felix_token"].(string), "t2"); !errors.Is(err, auth.ErrWrongTenant) {
		t.Errorf("token usable for another tenant: %v", err)
	}
}

func TestExchangeNarrowsAndGroups(t *testing.T) {
	env := newExchangeEnv(t)
	env.grants["group:ops"] = []string{"ns.manage:namespace:t1/orders"}
	body := `{"requested":["stream.publish"],"resources":["stream:t1/orders/*"]}`
	status, reply := env.post(t, "t1", "Bearer "+env.upstream(t, "carol", "ops"), body)
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, reply)
	}
	claims, err := (&auth.Verifier{Keys: env.signer.KeySet()}).Verify(reply["felix_token"].(string), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(claims.Perms, []string{"stream.publish:stream:t1/orders/*"}) {
		t.Errorf("perms %v", claims.Perms)
	}
	// A request outside the grants leaves nothing.
	status, reply = env.post(t, "t1", "Bearer "+env.upstream(t, "carol", "ops"), `{"resources":["stream:t1/billing/*"]}`)
	if status != http.StatusForbidden || reply["message"] != "no permissions" {
		t.Errorf("disjoint request: %d %v", status, reply)
	}
}

func TestExchangeErrors(t *testing.T) {
	env := newExchangeEnv(t)
	env.grants["alice"] = []string{"stream.publish:stream:t1/*/*"}
	good := "Bearer " + env.upstream(t, "alice")
	expired := env.idp.Claims(time.Now().Add(-3*time.Hour), "alice")
	evil := env.idp.Claims(time.Now(), "alice")
	evil["iss"] = "https://evil.example"
	for _, c := range []struct {
		name, tenant, authz, body string
		status                    int
		code, message             string
	}{
		{"no header", "t1", "", "", 401, "unauthorized", "missing bearer token"},
		{"basic auth", "t1", "Basic YTpi", "", 401, "unauthorized", "missing bearer token"},
		{"empty bearer", "t1", "Bearer ", "", 401, "unauthorized", "missing bearer token"},
		{"garbage token", "t1", "Bearer abc", "", 401, "unauthorized", "invalid token"},
		{"expired token", "t1", "Bearer " + env.idp.Token(t, "ec-1", expired), "", 401, "unauthorized", "invalid token"},
		{"unknown tenant", "t9", good, "", 403, "forbidden", "tenant not allowed"},
		{"no issuers", "empty", good, "", 403, "forbidden", "no issuers configured"},
		{"other issuer", "t1", "Bearer " + env.idp.Token(t, "ec-1", evil), "", 403, "forbidden", "issuer not allowed"},
		{"no permissions", "t1", "Bearer " + env.upstream(t, "nobody"), "", 403, "forbidden", "no permissions"},
		{"bad body", "t1", good, "{", 400, "validation_error", "request body is not valid JSON"},
		{"store down", "broken", good, "", 500, "internal", "internal error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, reply := env.post(t, c.tenant, c.authz, c.body)
			if status != c.status || reply["code"] != c.code || reply["message"] != c.message {
				t.Errorf("got %d %v, want %d %s %q", status, reply, c.status, c.code, c.message)
			}
			if v, ok := reply["request_id"]; !ok || v != nil {
				t.Errorf("request_id %v, want null", v)
			}
		})
	}
	if env.auditor.Denials() != 9 {
		t.Errorf("denials audited: %d, want 9", env.auditor.Denials())
	}
	// Wrong method.
	resp, err := env.srv.Client().Get(env.srv.URL + "/v1/tenants/t1/token/exchange")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

// Without a mux pattern the tenant comes from the path.
func TestExchangeTenantFromPath(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/tenants/t1/token/exchange":     "t1",
		"/api/v1/tenants/t2/token/exchange": "t2",
		"/v1/tenants//token/exchange":       "",
		"/v1/tenants/a/b/token/exchange":    "",
		"/v1/tenants/t1/token":              "",
	} {
		if got := tenantFromPath(path); got != want {
			t.Errorf("tenantFromPath(%q) = %q, want %q", path, got, want)
		}
	}
}

// A token exchanged for tenant t1 carries rights in t1 only: grants that
// reach the cluster (admin:cluster, "*") or other tenants are cut down to
// t1, so a tenant's identity provider cannot mint a control-plane cluster
// administrator.
func TestExchangeConfinesToTenant(t *testing.T) {
	env := newExchangeEnv(t)
	env.grants["alice"] = []string{"*:*", "admin:cluster", "stream.publish:stream:t2/*/*", "stream.subscribe:stream:*/orders/*"}
	env.grants["bob"] = []string{"admin:cluster", "cache.read:cache:t2/ns/c"}
	status, reply := env.post(t, "t1", "Bearer "+env.upstream(t, "alice"), "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, reply)
	}
	claims, err := (&auth.Verifier{Keys: env.signer.KeySet()}).Verify(reply["felix_token"].(string), "t1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := auth.NewMatcher(claims.Perms)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		action, resource string
		want             bool
	}{
		{auth.ActionAdmin, auth.ClusterResource, false},
		{auth.ActionAdmin, auth.TenantResource("t2"), false},
		{auth.ActionStreamPublish, auth.StreamResource("t2", "a", "b"), false},
		{auth.ActionAdmin, auth.TenantResource("t1"), true},
		{auth.ActionStreamPublish, auth.StreamResource("t1", "a", "b"), true},
		{auth.ActionStreamSubscribe, auth.StreamResource("t1", "orders", "x"), true},
		{auth.ActionCacheWrite, auth.CacheResource("t1", "n", "c"), true},
	} {
		if got := m.Allows(c.action, c.resource); got != c.want {
			t.Errorf("exchanged token (perms %v): Allows(%s, %s) = %v, want %v", claims.Perms, c.action, c.resource, got, c.want)
		}
	}
	// Nothing of bob's grants is in t1.
	if status, reply := env.post(t, "t1", "Bearer "+env.upstream(t, "bob"), ""); status != http.StatusForbidden || reply["message"] != "no permissions" {
		t.Errorf("grants outside the tenant only: %d %v", status, reply)
	}
}
