package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

type cpInfo struct {
	base, admin string
}

// watchControlPlanes captures the control planes the test's in-process
// commands start (serve's embedded one, or `felix controlplane`): next
// waits for the next one and returns its base URL and admin token.
func watchControlPlanes(t *testing.T) (next func() cpInfo) {
	t.Helper()
	cps := make(chan cpInfo, 4)
	cpReadyHook = func(a net.Addr, tok string) { cps <- cpInfo{base: "http://" + a.String(), admin: tok} }
	t.Cleanup(func() { cpReadyHook = nil })
	return func() cpInfo {
		t.Helper()
		select {
		case cp := <-cps:
			return cp
		case <-time.After(10 * time.Second):
			t.Fatal("the control plane did not start")
		}
		return cpInfo{}
	}
}

// startSecureServe runs serve with --auth token and the embedded control
// plane on a free port.
func startSecureServe(t *testing.T, dir string, extra ...string) (string, *broker.Broker, string, cpInfo) {
	t.Helper()
	nextCP := watchControlPlanes(t)
	args := append([]string{"--auth", "token", "--controlplane-addr", "127.0.0.1:0",
		"--controlplane-sync-interval", "20ms", "--no-dev-defaults"}, extra...)
	addr, b, ca, stop := startServeDir(t, dir, args...)
	t.Cleanup(stop)
	return addr, b, ca, nextCP()
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond until it holds, bounded against hangs.
var eventually = testwait.Eventually

// The embedded control plane: the admin API refuses requests without the
// admin credential; a stream and cache created over it reach the running
// broker; a token issued with `felix token issue` and the broker's key
// publishes there while other tokens are refused; deleting the namespace
// removes the stream from the broker.
func TestServeControlPlaneAndTokens(t *testing.T) {
	dir := t.TempDir()
	addr, b, ca, cp := startSecureServe(t, dir)

	if code, _ := call(t, "GET", cp.base+"/v1/tenants", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no credential: %d, want 401", code)
	}
	if code, _ := call(t, "POST", cp.base+"/v1/tenants", "wrong", `{"tenant_id":"acme","display_name":"Acme"}`); code != http.StatusForbidden {
		t.Fatalf("wrong credential: %d, want 403", code)
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/tenants", `{"tenant_id":"acme","display_name":"Acme"}`},
		{"/v1/tenants/acme/namespaces", `{"namespace":"orders","display_name":"Orders"}`},
		{"/v1/tenants/acme/namespaces/orders/streams", `{"stream":"created","kind":"Stream","shards":1,"retention":{},"consistency":"Leader","delivery":"AtMostOnce","durable":false}`},
		{"/v1/tenants/acme/namespaces/orders/caches", `{"cache":"state","display_name":"State"}`},
	} {
		if code, body := call(t, "POST", cp.base+c.path, cp.admin, c.body); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	eventually(t, "the new stream in the broker", func() bool {
		_, err := b.Stream("acme", "orders", "created")
		return err == nil
	})

	out, err := runCLI(t, "token", "issue", "--key", filepath.Join(dir, "token-key.pem"), "--tenant", "acme",
		"--sub", "svc", "--perm", "stream.publish:stream:acme/orders/*", "--perm", "cache.write:cache:acme/*/*")
	if err != nil {
		t.Fatalf("token issue: %v %s", err, out)
	}
	tok := strings.TrimSpace(out)
	dial := func(token string) (*client.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, TenantID: "acme", Token: token,
			Reconnect: client.ReconnectPolicy{Disabled: true}, RequestTimeout: 5 * time.Second})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good, err := dial(tok)
	if err != nil {
		t.Fatalf("dial with a good token: %v", err)
	}
	if err := good.Publish(ctx, "orders", "created", []byte("o-1"), client.WithAck(wire.AckPerMessage)); err != nil {
		t.Fatalf("publish with a good token: %v", err)
	}
	if _, err := good.Cache("orders", "state").Put(ctx, "o-1", []byte("new")); err != nil {
		t.Fatalf("cache put with a good token: %v", err)
	}
	// The token grants publish, not subscribe.
	if _, err := good.Subscribe(ctx, "orders", "created"); err == nil {
		t.Fatal("subscribe allowed without stream.subscribe")
	}
	// A development token is refused.
	if _, err := dial("dev"); err == nil || !strings.Contains(err.Error(), "auth failed") {
		t.Fatalf(`token "dev" with --auth token: %v, want auth failed`, err)
	}
	// The CLI reads --token-file for every stream it opens.
	tokenFile := filepath.Join(t.TempDir(), "token")
	pubWithFile := func(token string) (string, error) {
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return runCLI(t, "pub", "created", "o-2", "--addr", addr, "--ca-file", ca, "--tenant", "acme", "-n", "orders",
			"--token", "dev", "--token-file", tokenFile)
	}
	if out, err := pubWithFile(tok); err != nil {
		t.Fatalf("pub --token-file with a good token: %v %s", err, out)
	}
	if _, err := pubWithFile("dev"); err == nil || !strings.Contains(err.Error(), "auth failed") {
		t.Fatalf("pub --token-file holding dev: %v, want auth failed", err)
	}
	st, _ := b.Stream("acme", "orders", "created")
	if n := st.Stats().Published; n != 2 {
		t.Fatalf("published %d, want 2", n)
	}

	if code, body := call(t, "DELETE", cp.base+"/v1/tenants/acme/namespaces/orders", cp.admin, ""); code != http.StatusNoContent {
		t.Fatalf("delete namespace: %d %s", code, body)
	}
	eventually(t, "the stream to leave the broker", func() bool {
		_, err := b.Stream("acme", "orders", "created")
		return errors.Is(err, broker.ErrStreamNotFound)
	})
}

// Admin Felix tokens (permission admin) work on the API; others do not.
func TestControlPlaneAdminTokens(t *testing.T) {
	dir := t.TempDir()
	_, _, _, cp := startSecureServe(t, dir)
	issue := func(perm string) string {
		out, err := runCLI(t, "token", "issue", "--key", filepath.Join(dir, "token-key.pem"), "--tenant", "ops",
			"--sub", "operator", "--perm", perm)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	if code, body := call(t, "POST", cp.base+"/v1/tenants", issue("admin:cluster"), `{"tenant_id":"acme","display_name":"Acme"}`); code != http.StatusCreated {
		t.Fatalf("admin:cluster token: %d %s", code, body)
	}
	if code, _ := call(t, "GET", cp.base+"/v1/tenants", issue("stream.publish:stream:ops/*/*"), ""); code != http.StatusForbidden {
		t.Fatalf("non-admin token: %d, want 403", code)
	}
	// admin:cluster reaches every tenant's routes; admin:tenant:ops only
	// its own.
	if code, body := call(t, "GET", cp.base+"/v1/tenants/acme/namespaces", issue("admin:cluster"), ""); code != http.StatusOK {
		t.Fatalf("admin:cluster token on acme's route: %d %s", code, body)
	}
	if code, _ := call(t, "GET", cp.base+"/v1/tenants/acme/namespaces", issue("admin:tenant:ops"), ""); code != http.StatusForbidden {
		t.Fatalf("admin:tenant:ops token on acme's route: %d, want 403", code)
	}
	// The JWKS endpoint is public and lists the signing key.
	code, body := call(t, "GET", cp.base+"/v1/tenants/acme/.well-known/jwks.json", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"crv":"Ed25519"`) {
		t.Fatalf("jwks: %d %s", code, body)
	}
}

// mTLS from the serve flags: a client without a certificate is refused.
func TestServeRequiresClientCertificate(t *testing.T) {
	dir := t.TempDir()
	// A first start creates the development certificate, which then serves
	// as the client CA: a client without any certificate must be refused.
	_, _, _, stop := startServeDir(t, dir)
	stop()
	addr, _, ca, stop2 := startServeDir(t, dir, "--tls-client-ca", filepath.Join(dir, "dev-cert.pem"), "--tls-require-client-cert")
	defer stop2()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, Reconnect: client.ReconnectPolicy{Disabled: true}})
	if err == nil {
		err = c.Publish(ctx, "default", "demo", []byte("x"), client.WithAck(wire.AckPerMessage))
		c.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	t.Logf("refused as expected: %v", err)
}

// A standalone control plane (`felix controlplane`) drives a broker
// started with --controlplane-url: a stream created over its API appears in
// the broker.
func TestStandaloneControlPlaneDrivesBroker(t *testing.T) {
	cp := startStandaloneCP(t, "http", t.TempDir())

	_, b, _, stop := startServeDir(t, t.TempDir(), "--controlplane-url", cp.base, "--controlplane-token", cp.admin,
		"--controlplane-sync-interval", "20ms")
	defer stop()
	for _, c := range []struct{ path, body string }{
		{"/v1/tenants", `{"tenant_id":"acme","display_name":"Acme"}`},
		{"/v1/tenants/acme/namespaces", `{"namespace":"web","display_name":"Web"}`},
		{"/v1/tenants/acme/namespaces/web/streams", `{"stream":"clicks","kind":"Stream","shards":1,"retention":{},"consistency":"Leader","delivery":"AtMostOnce","durable":false}`},
	} {
		if code, body := call(t, "POST", cp.base+c.path, cp.admin, c.body); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	eventually(t, "the stream from the standalone control plane", func() bool {
		_, err := b.Stream("acme", "web", "clicks")
		return err == nil
	})
}

// --jwks-file: tokens verify against the file's keys, and a rotated file
// is picked up without a restart (old key refused, new key accepted).
func TestServeJWKSFileReload(t *testing.T) {
	dir := t.TempDir()
	key1, key2, jwks := filepath.Join(dir, "k1.pem"), filepath.Join(dir, "k2.pem"), filepath.Join(dir, "jwks.json")
	if out, err := runCLI(t, "token", "keygen", "--out", key1, "--jwks", jwks); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	if out, err := runCLI(t, "token", "keygen", "--out", key2); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	tokenOf := func(key string) string {
		out, err := runCLI(t, "token", "issue", "--key", key, "--tenant", "default", "--sub", "svc",
			"--perm", "stream.publish:stream:default/*/*")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	addr, _, ca, stop := startServeDir(t, t.TempDir(), "--auth", "token", "--jwks-file", jwks, "--jwks-refresh", "20ms")
	defer stop()
	publishWith := func(tok string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, Token: tok, Reconnect: client.ReconnectPolicy{Disabled: true}})
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Publish(ctx, "default", "demo", []byte("x"), client.WithAck(wire.AckPerMessage))
	}
	if err := publishWith(tokenOf(key1)); err != nil {
		t.Fatalf("token of the file's key: %v", err)
	}
	if err := publishWith(tokenOf(key2)); err == nil {
		t.Fatal("token of a key not in the file accepted")
	}
	// Rotate: the file now lists key2 only.
	out, err := runCLI(t, "token", "jwks", "--key", key2)
	if err != nil {
		t.Fatal(err)
	}
	tmp := jwks + ".new"
	if err := os.WriteFile(tmp, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, jwks); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated key set", func() bool { return publishWith(tokenOf(key2)) == nil })
	if err := publishWith(tokenOf(key1)); err == nil {
		t.Fatal("token of the removed key still accepted")
	}
}

// The admin token belongs to the control-plane API: a broker that serves
// none (--controlplane-addr off, or a follower of --controlplane-url)
// writes no admin-token file; one that serves it does.
func TestAdminTokenOnlyWithControlPlaneAPI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		want  bool
	}{
		{"api off", nil, false}, // startServeDir passes --controlplane-addr off
		{"follower", []string{"--controlplane-url", "http://127.0.0.1:9", "--controlplane-token", "x"}, false},
		{"api on", []string{"--controlplane-addr", "127.0.0.1:0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, _, stop := startServeDir(t, dir, tc.extra...)
			stop()
			_, err := os.Stat(filepath.Join(dir, "admin-token"))
			if got := err == nil; got != tc.want {
				t.Fatalf("admin-token file exists: %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}

// `felix controlplane --listen ""` is refused: "" would be every
// interface on a random port, for the admin API.
func TestControlPlaneRefusesEmptyListen(t *testing.T) {
	_, err := runCLI(t, "controlplane", "--listen", "", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--listen: empty address") {
		t.Fatalf("controlplane --listen \"\": %v, want a refusal", err)
	}
}
