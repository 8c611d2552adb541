package oidc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/oidctest"
)

// The {tenant} of the exchange URL is whatever the client writes: '*' is a
// valid path character and the router unescapes %2F into '/'. A tenant
// that cannot be a name must be refused as not allowed before anything is
// looked up or signed, even when Issuers answers every tenant (one
// corporate identity provider for all tenants): otherwise the tenant's
// '*' went into the confined permissions as a wildcard, and the token for
// tenant "*" carried stream.subscribe:stream:*/public/*, every tenant's.
func TestExchangeRefusesTenantThatIsNotAName(t *testing.T) {
	idp := oidctest.New(t)
	signer, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	h := &ExchangeHandler{
		Issuers: func(_ context.Context, tenant string) ([]IssuerConfig, error) {
			mu.Lock()
			asked = append(asked, tenant)
			mu.Unlock()
			return []IssuerConfig{issuerConfig(idp)}, nil // every tenant trusts the corporate IdP
		},
		Permissions: func(context.Context, string, *Principal) ([]string, error) {
			return []string{"stream.subscribe:stream:*/public/*"}, nil // confined to the tenant
		},
		Signer:  signer,
		Auditor: &auth.Auditor{Log: slog.New(slog.DiscardHandler)},
		Log:     slog.New(slog.DiscardHandler),
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/tenants/{tenant}/token/exchange", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	token := idp.Token(t, "ec-1", idp.Claims(time.Now(), "alice"))

	post := func(tenant string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/tenants/"+tenant+"/token/exchange", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("reply %q: %v", raw, err)
		}
		return resp.StatusCode, out
	}

	for _, tenant := range []string{"*", "t*", "a%2Fb", "a%3Ab", "%2A"} {
		status, reply := post(tenant)
		if status != http.StatusForbidden || reply["message"] != "tenant not allowed" {
			perms := ""
			if tok, ok := reply["felix_token"].(string); ok {
				c, _ := auth.PeekClaims(tok)
				perms = strings.Join(c.Perms, " ")
			}
			t.Errorf("tenant %q: %d %v, want 403 tenant not allowed (token perms: %s)", tenant, status, reply, perms)
		}
	}
	mu.Lock()
	if len(asked) > 0 {
		t.Errorf("Issuers asked for %q", asked)
	}
	asked = nil
	mu.Unlock()

	// A name still exchanges, confined to it.
	status, reply := post("t1")
	if status != http.StatusOK {
		t.Fatalf("t1: %d %v", status, reply)
	}
	c, err := (&auth.Verifier{Keys: signer.KeySet()}).Verify(reply["felix_token"].(string), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Perms) != 1 || c.Perms[0] != "stream.subscribe:stream:t1/public/*" {
		t.Errorf("t1 perms %v", c.Perms)
	}
}
