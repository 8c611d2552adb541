package transport

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func leafOf(t *testing.T, conf *tls.Config) *x509.Certificate {
	t.Helper()
	if len(conf.Certificates) != 1 {
		t.Fatalf("want 1 certificate, got %d", len(conf.Certificates))
	}
	leaf, err := x509.ParseCertificate(conf.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// writeCertFiles writes a development certificate valid from now into dir
// under the given names and returns their paths.
func writeCertFiles(t *testing.T, dir, certName, keyName string, now time.Time) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := newDevCertPEM(now)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, certName), filepath.Join(dir, keyName)
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestDevCertEphemeral(t *testing.T) {
	log, logs := newTestLogger()
	conf, err := ServerTLSConfig(TLSOptions{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if conf.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion = %x, want TLS 1.3", conf.MinVersion)
	}
	if len(conf.NextProtos) != 0 {
		t.Errorf("NextProtos = %v, want none", conf.NextProtos)
	}
	leaf := leafOf(t, conf)
	if got := leaf.DNSNames; len(got) != 1 || got[0] != "localhost" {
		t.Errorf("DNSNames = %v", got)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, ",") != "127.0.0.1,::1" {
		t.Errorf("IPAddresses = %v", ips)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("validity %v, want about a year", d)
	}
	if !strings.Contains(logs.String(), "ephemeral dev certificate") {
		t.Errorf("log does not name the ephemeral certificate:\n%s", logs)
	}
}

func TestDevCertGeneratedThenReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	log, logs := newTestLogger()
	first, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "generated") || !strings.Contains(logs.String(), DevCertFile) {
		t.Errorf("first start log:\n%s", logs)
	}
	st, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	log2, logs2 := newTestLogger()
	second, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log2)
	if err != nil {
		t.Fatal(err)
	}
	if !leafOf(t, first).Equal(leafOf(t, second)) {
		t.Error("second start did not reuse the stored certificate")
	}
	if !strings.Contains(logs2.String(), "reused") {
		t.Errorf("second start log:\n%s", logs2)
	}
}

func TestDevCertRegeneratedWhenUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DevCertFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DevKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := newTestLogger()
	if _, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "regenerating") || !strings.Contains(logs.String(), "unreadable") {
		t.Errorf("log:\n%s", logs)
	}
	if _, reason := loadDevCert(filepath.Join(dir, DevCertFile), filepath.Join(dir, DevKeyFile), time.Now()); reason != "" {
		t.Errorf("stored certificate still unusable: %s", reason)
	}
}

func TestDevCertRegeneratedWhenExpired(t *testing.T) {
	dir := t.TempDir()
	writeCertFiles(t, dir, DevCertFile, DevKeyFile, time.Now().Add(-2*devCertValidity))
	log, logs := newTestLogger()
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "expired") {
		t.Errorf("log:\n%s", logs)
	}
	if leaf := leafOf(t, conf); !time.Now().Before(leaf.NotAfter) {
		t.Errorf("certificate in use expired at %v", leaf.NotAfter)
	}
}

func TestCertFilesLoaded(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	log, logs := newTestLogger()
	conf, err := ServerTLSConfig(TLSOptions{CertFile: certFile, KeyFile: keyFile, DataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), certFile) {
		t.Errorf("log does not name %s:\n%s", certFile, logs)
	}
	if _, err := os.Stat(filepath.Join(dir, DevCertFile)); err == nil {
		t.Error("a dev certificate was written although files were given")
	}
	ln := startEcho(t, conf)
	client, err := ClientTLSConfig(ClientTLSOptions{CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, ln.Addr().String(), client); err != nil {
		t.Fatalf("round trip with the loaded certificate: %v", err)
	}
}

func TestCertFileMissing(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	missing := filepath.Join(dir, "nope.pem")

	for name, opts := range map[string]TLSOptions{
		"cert": {CertFile: missing, KeyFile: keyFile},
		"key":  {CertFile: certFile, KeyFile: missing},
	} {
		_, err := ServerTLSConfig(opts, nil)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s missing: err = %v, want it to name %s", name, err, missing)
		}
	}
	if _, err := ServerTLSConfig(TLSOptions{CertFile: certFile}, nil); err == nil {
		t.Error("cert without key: no error")
	}
	if _, err := ClientTLSConfig(ClientTLSOptions{CAFile: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing CA file: err = %v", err)
	}
	if _, err := ClientTLSConfig(ClientTLSOptions{CAFile: keyFile}); err == nil {
		t.Error("CA file without certificates: no error")
	}
}

func TestClientTLSConfigDefaults(t *testing.T) {
	conf, err := ClientTLSConfig(ClientTLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if conf.ServerName != "localhost" || conf.MinVersion != tls.VersionTLS13 || len(conf.NextProtos) != 0 || conf.InsecureSkipVerify {
		t.Errorf("defaults: server name %q, min %x, alpn %v, insecure %v",
			conf.ServerName, conf.MinVersion, conf.NextProtos, conf.InsecureSkipVerify)
	}
}

// The broker's dev-cert.pem is all a client needs to trust it.
func TestClientVerification(t *testing.T) {
	dir := t.TempDir()
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, conf).Addr().String()

	withCA, err := ClientTLSConfig(ClientTLSOptions{CAFile: filepath.Join(dir, DevCertFile)})
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, addr, withCA); err != nil {
		t.Errorf("client trusting dev-cert.pem: %v", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(leafOf(t, conf))
	withPool, _ := ClientTLSConfig(ClientTLSOptions{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := roundTrip(t, addr, withPool); err != nil {
		t.Errorf("client with RootCAs and IP server name: %v", err)
	}

	noCA, _ := ClientTLSConfig(ClientTLSOptions{})
	err = roundTrip(t, addr, noCA)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("client without CA: err = %v, want a certificate verification error", err)
	}

	wrongName, _ := ClientTLSConfig(ClientTLSOptions{CAFile: filepath.Join(dir, DevCertFile), ServerName: "felix.example"})
	if err := roundTrip(t, addr, wrongName); err == nil {
		t.Error("client verifying a name the certificate lacks: no error")
	}

	insecure, _ := ClientTLSConfig(ClientTLSOptions{Insecure: true})
	if err := roundTrip(t, addr, insecure); err != nil {
		t.Errorf("insecure client: %v", err)
	}
}
