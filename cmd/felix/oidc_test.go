package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/wire"
)

// idpToken signs an upstream ID token for sub with groups, valid for five
// minutes.
func idpToken(t *testing.T, idp *oidctest.Provider, sub string, groups ...string) string {
	t.Helper()
	now := time.Now()
	c := idp.Claims(now, sub)
	c["groups"] = groups
	c["exp"] = now.Add(5 * time.Minute).Unix()
	return idp.Token(t, oidctest.DefaultKID, c)
}

// acmeOIDCConfig writes an --oidc-config whose tenant acme trusts idp:
// group writers may publish to acme/orders/*, everyone verified may read
// acme's caches.
func acmeOIDCConfig(t *testing.T, idp *oidctest.Provider) string {
	t.Helper()
	return writeConfig(t, `
tenants:
  acme:
    issuers:
      - issuer: `+idp.Issuer()+`
        audiences: [felix]
        groups_claim: groups
    grants:
      "group:writers": ["stream.publish:stream:acme/orders/*"]
      "*": ["cache.read:cache:acme/*/*"]
`)
}

// A user of an OIDC identity provider exchanges its ID token at the
// embedded control plane for a Felix token with the permissions its groups
// are granted (--oidc-config), and uses it on the broker.
func TestServeOIDCTokenExchange(t *testing.T) {
	idp := oidctest.New(t)
	cfg := acmeOIDCConfig(t, idp)
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
	if code, body := call(t, "POST", cp.base+"/v1/tenants/other/token/exchange", idpToken(t, idp, "ann", "writers"), ""); code != http.StatusForbidden {
		t.Fatalf("exchange for a tenant without identity providers: %d %s", code, body)
	}
	code, body := exchange(idpToken(t, idp, "ann", "writers"))
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

// A refused token exchange is audited as the broker's refusals are, by
// the same auditor: an "access denied" line with the action
// token.exchange, counted in the one total (felix_access_denied_total)
// with the broker's. (felix serve gave the exchange no auditor: its
// refusals were neither logged nor counted.) An issuer containing '|' is
// refused at start.
func TestServeExchangeRefusalsAudited(t *testing.T) {
	idp := oidctest.New(t)
	cfg := acmeOIDCConfig(t, idp)
	var logs syncbuf.Buffer
	nextCP := watchControlPlanes(t)
	addr, _, ca, stop := startServeLogs(t, t.TempDir(), &logs, "--auth", "token", "--controlplane-addr", "127.0.0.1:0",
		"--controlplane-sync-interval", "20ms", "--no-dev-defaults", "--oidc-config", cfg, "--stream", "acme/orders/created")
	t.Cleanup(stop)
	cp := nextCP()
	url := cp.base + "/v1/tenants/acme/token/exchange"
	if code, body := call(t, "POST", url, "not-a-jwt", ""); code != http.StatusUnauthorized {
		t.Fatalf("exchange with garbage: %d %s", code, body)
	}
	code, body := call(t, "POST", url, idpToken(t, idp, "ann", "writers"), "")
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %s", code, body)
	}
	var reply struct {
		FelixToken string `json:"felix_token"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, TenantID: "acme", Token: reply.FelixToken,
		Reconnect: client.ReconnectPolicy{Disabled: true}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "orders", "created"); err == nil {
		t.Fatal("subscribe without the grant succeeded")
	}
	eventually(t, "both refusals logged", func() bool { return strings.Count(logs.String(), "access denied") >= 2 })
	var exchange, subscribe string
	for l := range strings.SplitSeq(logs.String(), "\n") {
		switch {
		case !strings.Contains(l, "access denied"):
		case strings.Contains(l, "action=token.exchange"):
			exchange = l
		default:
			subscribe = l
		}
	}
	if !strings.Contains(exchange, "denials_total=1") || !strings.Contains(subscribe, "denials_total=2") {
		t.Fatalf("exchange refusal %q and subscribe refusal %q: want one auditor counting both (denials_total 1, then 2)", exchange, subscribe)
	}

	bad := writeConfig(t, `
tenants:
  acme:
    issuers:
      - issuer: "https://a|b"
        audiences: [felix]
`)
	cmd := newServeCmd()
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--metrics-addr", "off", "--auth", "token",
		"--controlplane-addr", "127.0.0.1:0", "--no-dev-defaults", "--oidc-config", bad})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "contains '|'") {
		t.Fatalf("serve with an issuer containing '|': %v", err)
	}
}

// A tenant of --oidc-config that cannot be a tenant name is refused at
// start: written into the grants' patterns, a '*' tenant would be a
// wildcard over every tenant.
func TestOIDCConfigRefusesTenantThatIsNotAName(t *testing.T) {
	for _, tenant := range []string{`"*"`, `"a/b"`, `"a:b"`, `"a b"`} {
		path := writeConfig(t, `
tenants:
  `+tenant+`:
    issuers:
      - issuer: https://idp.example
        audiences: [felix]
`)
		_, err := loadOIDCConfig(path)
		if err == nil || !strings.Contains(err.Error(), "is not a valid name") {
			t.Errorf("tenant %s: %v, want refused as not a valid name", tenant, err)
		}
	}
	ok := writeConfig(t, `
tenants:
  acme:
    issuers:
      - issuer: https://idp.example
        audiences: [felix]
`)
	if _, err := loadOIDCConfig(ok); err != nil {
		t.Fatalf("tenant acme: %v", err)
	}
}
