package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/felixmq/felix/transport"
)

// A TLS handshake the broker refuses (here: no client certificate where
// one is required) shows in felix_tls_handshake_failures_total under its
// reason, every other reason at 0.
func TestScrapeHandshakeFailures(t *testing.T) {
	dir := t.TempDir()
	caFile := writeTestCA(t, dir)
	conf, err := transport.ServerTLSConfig(transport.TLSOptions{DataDir: dir, ClientCAFile: caFile, RequireClientCert: true}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	failures := new(transport.HandshakeFailures)
	ln, err := transport.Listen("127.0.0.1:0", conf, transport.Options{HandshakeFailures: failures}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })

	client, err := transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: filepath.Join(dir, transport.DevCertFile)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// TLS 1.3: the client may finish its side before the broker refuses.
	if conn, err := transport.Dial(ctx, ln.Addr().String(), client, transport.Options{}, quiet); err == nil {
		select {
		case <-conn.Context().Done():
		case <-ctx.Done():
			t.Fatal("client without a certificate not refused")
		}
		_ = conn.Close()
	}
	// The broker counts once quic-go has closed its side.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for failures.Counts().Total() == 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("refused handshake not counted")
		}
	}

	f := scrape(t, startServer(t, Options{Sources: Sources{HandshakeFailures: failures}}))
	for _, reason := range transport.HandshakeFailureReasons() {
		want := 0.0
		if reason == transport.HandshakeClientCertMissing {
			want = 1
		}
		if got := f.value(t, "felix_tls_handshake_failures_total", "reason", reason); got != want {
			t.Errorf("felix_tls_handshake_failures_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if n := len(f["felix_tls_handshake_failures_total"].GetMetric()); n != len(transport.HandshakeFailureReasons()) {
		t.Errorf("%d series, want one per reason", n)
	}
}

// writeTestCA writes a self-signed CA certificate to dir and returns its
// file.
func writeTestCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "clients"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "clients-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
