package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/transport"
)

// startStandaloneCP runs `felix controlplane` in this process with args
// (--listen 127.0.0.1:0 and --data-dir cpDir come first) until the test
// ends, and returns its API's base URL (scheme://addr) and admin token.
func startStandaloneCP(t *testing.T, scheme, cpDir string, args ...string) cpInfo {
	t.Helper()
	got := make(chan cpInfo, 1)
	cpReadyHook = func(a net.Addr, tok string) { got <- cpInfo{base: scheme + "://" + a.String(), admin: tok} }
	t.Cleanup(func() { cpReadyHook = nil })
	cmd := newControlPlaneCmd()
	cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0", "--data-dir", cpDir, "--log-level", "warn"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controlplane: %v", err)
		}
	})
	var cp cpInfo
	select {
	case cp = <-got:
	case err := <-done:
		t.Fatalf("controlplane exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("controlplane did not start")
	}
	cpReadyHook = nil
	return cp
}

// `felix serve --controlplane-tls` serves the embedded API over HTTPS with
// the broker's (development) certificate: `felix admin` beside the data
// dir trusts it by itself, plain HTTP gets told to use https, and a
// certificate from another CA is refused.
func TestEmbeddedControlPlaneOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	nextCP := watchControlPlanes(t)
	addr, _, ca, stop := startServeDir(t, dir, "--no-dev-defaults", "--controlplane-tls",
		"--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms")
	defer stop()
	cp := nextCP()
	host := strings.TrimPrefix(cp.base, "http://")
	admin := func(url string, args ...string) (string, error) {
		return runCLI(t, append(append([]string{"admin"}, args...), "--controlplane-url", url, "--data-dir", dir)...)
	}

	if out, err := admin("https://"+host, "stream", "add", "orders", "--tenant", "acme", "-n", "shop"); err != nil {
		t.Fatalf("admin over https: %v\n%s", err, out)
	}
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "shop"}
	eventually(t, "a publish to the stream declared over https", func() bool {
		_, err := runCLI(t, append([]string{"pub", "orders", "o-1"}, conn...)...)
		return err == nil
	})

	_, err := admin("http://"+host, "tenant", "ls")
	if err == nil || !strings.Contains(err.Error(), "--controlplane-url https://"+host) {
		t.Fatalf("plain http to the https API: %v; want a hint to use https", err)
	}

	// felix backup fetches the running broker's store over https too.
	dest := filepath.Join(t.TempDir(), "copy")
	if out, err := runCLI(t, "backup", "--data-dir", dir, "--controlplane-url", "https://"+host, dest); err != nil ||
		!strings.Contains(out, "https://"+host) {
		t.Fatalf("backup over https: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "backup", "--data-dir", dir, "--controlplane-url", "http://"+host, dest+"2"); err == nil ||
		!strings.Contains(err.Error(), "--controlplane-url https://"+host) {
		t.Fatalf("backup over plain http to the https API: %v; want a hint to use https", err)
	}

	// The development certificate of another data dir is another CA.
	other := t.TempDir()
	if _, err := transport.ServerTLSConfig(transport.TLSOptions{DataDir: other}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = admin("https://"+host, "tenant", "ls", "--controlplane-ca-file", filepath.Join(other, "dev-cert.pem"))
	if err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "--controlplane-ca-file)") {
		t.Fatalf("https with another CA: %v; want a certificate error and what to do", err)
	}

	// --controlplane-tls needs an embedded control plane.
	if _, err := runCLI(t, "serve", "--data-dir", t.TempDir(), "--controlplane-tls", "--controlplane-addr", "off"); err == nil ||
		!strings.Contains(err.Error(), "--controlplane-tls") {
		t.Fatalf("serve --controlplane-tls --controlplane-addr off: %v", err)
	}
}

// A standalone control plane served over HTTPS (--tls-cert/--tls-key)
// drives a broker that follows it with --controlplane-ca-file; a broker
// without the CA does not take its metadata.
func TestStandaloneControlPlaneOverHTTPS(t *testing.T) {
	certDir := t.TempDir()
	if _, err := transport.ServerTLSConfig(transport.TLSOptions{DataDir: certDir}, nil); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(certDir, "dev-cert.pem"), filepath.Join(certDir, "dev-key.pem")
	cp := startStandaloneCP(t, "https", t.TempDir(), "--tls-cert", cert, "--tls-key", key)

	_, b, _, stop := startServeDir(t, t.TempDir(), "--controlplane-url", cp.base, "--controlplane-token", cp.admin,
		"--controlplane-ca-file", cert, "--controlplane-sync-interval", "20ms")
	defer stop()
	_, untrusting, _, stop2 := startServeDir(t, t.TempDir(), "--controlplane-url", cp.base, "--controlplane-token", cp.admin,
		"--controlplane-sync-interval", "20ms")
	defer stop2()

	hc, err := httpClientWithCA(cert)
	if err != nil {
		t.Fatal(err)
	}
	c := controlplane.NewClient(cp.base, cp.admin, hc)
	ctx := context.Background()
	if _, err := c.CreateTenant(ctx, controlplane.Tenant{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNamespace(ctx, controlplane.Namespace{TenantID: "acme", Namespace: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream(ctx, controlplane.Stream{TenantID: "acme", Namespace: "web", Stream: "clicks"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stream from the https control plane", func() bool {
		_, err := b.Stream("acme", "web", "clicks")
		return err == nil
	})
	// The broker that does not trust the certificate has had as long.
	if _, err := untrusting.Stream("acme", "web", "clicks"); err == nil {
		t.Fatal("a broker without --controlplane-ca-file took metadata from a control plane whose certificate it cannot verify")
	}
}

// A broker verifies Felix tokens with the keys a standalone control plane
// serves over HTTPS (--jwks-url) when --jwks-ca-file names the CA of its
// certificate; without it the broker does not start on that URL.
func TestJWKSURLOverHTTPSWithCAFile(t *testing.T) {
	certDir := t.TempDir()
	if _, err := transport.ServerTLSConfig(transport.TLSOptions{DataDir: certDir}, nil); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(certDir, "dev-cert.pem"), filepath.Join(certDir, "dev-key.pem")
	cpDir := t.TempDir()
	cp := startStandaloneCP(t, "https", cpDir, "--tls-cert", cert, "--tls-key", key)
	jwksURL := cp.base + "/v1/tenants/default/.well-known/jwks.json"

	if _, err := runCLI(t, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-addr", "off",
		"--controlplane-addr", "off", "--auth", "token", "--jwks-url", jwksURL); err == nil {
		t.Fatal("serve took an https --jwks-url whose certificate it cannot verify")
	}

	addr, _, ca, stop := startServeDir(t, t.TempDir(), "--auth", "token", "--jwks-url", jwksURL, "--jwks-ca-file", cert)
	defer stop()
	out, err := runCLI(t, "token", "issue", "--key", filepath.Join(cpDir, "token-key.pem"), "--tenant", "default", "--sub", "svc",
		"--perm", "stream.publish:stream:default/*/*")
	if err != nil {
		t.Fatalf("token issue: %v %s", err, out)
	}
	if out, err := runCLI(t, "pub", "demo", "x", "--addr", addr, "--ca-file", ca, "--token", strings.TrimSpace(out)); err != nil {
		t.Fatalf("publish with a token of the control plane's key: %v %s", err, out)
	}
	if _, err := runCLI(t, "pub", "demo", "x", "--addr", addr, "--ca-file", ca, "--token", "not-a-token"); err == nil {
		t.Fatal("publish with a bad token accepted")
	}

	if _, err := runCLI(t, "serve", "--data-dir", t.TempDir(), "--jwks-ca-file", cert); err == nil || !strings.Contains(err.Error(), "--jwks-ca-file") {
		t.Fatalf("--jwks-ca-file without --jwks-url: %v", err)
	}
}
