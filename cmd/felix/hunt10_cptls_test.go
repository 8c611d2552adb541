package main

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/transport"
)

// A broker that requires client certificates on QUIC (mTLS flags) serves
// its HTTPS control plane without asking for one: `felix admin` (which
// has none) declares a stream, and the certificate shown is the broker's
// own. A TLS 1.2 client is refused.
func TestHunt10HTTPSControlPlaneUnderMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caDir := t.TempDir()
	if _, err := transport.ServerTLSConfig(transport.TLSOptions{DataDir: caDir}, nil); err != nil {
		t.Fatal(err)
	}
	clientCA := filepath.Join(caDir, "dev-cert.pem")
	nextCP := watchControlPlanes(t)
	_, _, devCert, stop := startServeDir(t, dir, "--no-dev-defaults", "--controlplane-tls",
		"--tls-client-ca", clientCA, "--tls-require-client-cert",
		"--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms")
	defer stop()
	base := "https://" + strings.TrimPrefix(nextCP().base, "http://")
	out, err := runCLI(t, "admin", "stream", "add", "orders", "--tenant", "acme", "-n", "shop", "--controlplane-url", base, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "created stream acme/shop/orders") {
		t.Fatalf("admin over https to an mTLS broker: %v\n%s", err, out)
	}

	pool, err := transport.CertPoolFromFile(devCert)
	if err != nil {
		t.Fatal(err)
	}
	get := func(conf *tls.Config) (*http.Response, error) {
		tr := &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		return (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(base + "/v1/openapi.json")
	}
	resp, err := get(&tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("HTTPS without a client certificate: %v", err)
	}
	resp.Body.Close()
	pemBytes, err := os.ReadFile(devCert)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(pemBytes); block == nil || len(resp.TLS.PeerCertificates) == 0 || !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, block.Bytes) {
		t.Fatal("the HTTPS API does not show the broker's certificate")
	}
	if resp, err := get(&tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.2 client was served")
	}
}

// A CA file that is not a CA bundle is refused up front, naming the flag:
// by serve following an https control plane, and by admin.
func TestHunt10BadControlPlaneCAFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"malformed": bad, "missing": filepath.Join(dir, "nope.pem")} {
		_, err := runCLI(t, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-addr", "off",
			"--controlplane-url", "https://127.0.0.1:1", "--controlplane-token", "x", "--controlplane-ca-file", path)
		if err == nil || !strings.Contains(err.Error(), "controlplane-ca-file") || !strings.Contains(err.Error(), path) {
			t.Errorf("serve with a %s CA file: %v", name, err)
		}
		_, err = runCLI(t, "admin", "tenant", "ls", "--controlplane-url", "https://127.0.0.1:1", "--controlplane-token", "x", "--controlplane-ca-file", path)
		if err == nil || !strings.Contains(err.Error(), "--controlplane-ca-file") {
			t.Errorf("admin with a %s CA file: %v", name, err)
		}
	}
}
