package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+"-ca.pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a client certificate signed by ca for tmpl's names and
// returns the cert and key file paths.
func (ca *testCA) issue(t *testing.T, dir, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	return ca.issueWith(t, dir, name, tmpl, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
}

// issueWith is issue with a chosen validity and extended key usage.
func (ca *testCA) issueWith(t *testing.T, dir, name string, tmpl *x509.Certificate, notBefore, notAfter time.Time, eku ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = eku
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// recordIdentities makes conf report the ClientCertIdentity of every
// verified connection.
func recordIdentities(conf *tls.Config) <-chan string {
	ids := make(chan string, 16)
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		ids <- ClientCertIdentity(&cs)
		return nil
	}
	return ids
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	otherCA := newTestCA(t, dir, "other")
	aliceCert, aliceKey := ca.issue(t, dir, "alice", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})
	mallory, malloryKey := otherCA.issue(t, dir, "mallory", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})

	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: ca.file, RequireClientCert: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := recordIdentities(conf)
	addr := startEcho(t, conf).Addr().String()
	serverCA := filepath.Join(dir, DevCertFile)

	client := func(certFile, keyFile string) *tls.Config {
		c, err := ClientTLSConfig(ClientTLSOptions{CAFile: serverCA, CertFile: certFile, KeyFile: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := roundTrip(t, addr, client("", "")); err == nil {
		t.Error("client without a certificate was served")
	} else if !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("client without a certificate: err = %v, want certificate required", err)
	}
	if err := roundTrip(t, addr, client(mallory, malloryKey)); err == nil {
		t.Error("client with a certificate from another CA was served")
	} else if !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("certificate from another CA: err = %v, want unknown certificate authority", err)
	}
	if err := roundTrip(t, addr, client(aliceCert, aliceKey)); err != nil {
		t.Fatalf("client with a good certificate: %v", err)
	}
	if id := <-ids; id != "alice" {
		t.Errorf("identity %q, want alice", id)
	}
}

// With ClientCAFile but without RequireClientCert, clients may come
// without a certificate, but a certificate shown must be valid.
func TestOptionalClientCert(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	otherCA := newTestCA(t, dir, "other")
	bobCert, bobKey := ca.issue(t, dir, "bob", &x509.Certificate{DNSNames: []string{"bob.example"}})
	eveCert, eveKey := otherCA.issue(t, dir, "eve", &x509.Certificate{Subject: pkix.Name{CommonName: "eve"}})
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: ca.file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := recordIdentities(conf)
	addr := startEcho(t, conf).Addr().String()
	serverCA := filepath.Join(dir, DevCertFile)

	anon, _ := ClientTLSConfig(ClientTLSOptions{CAFile: serverCA})
	if err := roundTrip(t, addr, anon); err != nil {
		t.Fatalf("anonymous client: %v", err)
	}
	if id := <-ids; id != "" {
		t.Errorf("anonymous identity %q", id)
	}
	bob, _ := ClientTLSConfig(ClientTLSOptions{CAFile: serverCA, CertFile: bobCert, KeyFile: bobKey})
	if err := roundTrip(t, addr, bob); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if id := <-ids; id != "bob.example" {
		t.Errorf("identity %q, want the first SAN bob.example", id)
	}
	eve, _ := ClientTLSConfig(ClientTLSOptions{CAFile: serverCA, CertFile: eveCert, KeyFile: eveKey})
	if err := roundTrip(t, addr, eve); err == nil {
		t.Error("client with a certificate from another CA was served")
	} else if !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("certificate from another CA: err = %v, want unknown certificate authority", err)
	}
}

func TestClientAuthOptionErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ServerTLSConfig(TLSOptions{RequireClientCert: true}, nil); err == nil {
		t.Error("RequireClientCert without ClientCAFile accepted")
	}
	missing := filepath.Join(dir, "missing.pem")
	if _, err := ServerTLSConfig(TLSOptions{ClientCAFile: missing}, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing client CA: err = %v", err)
	}
	if _, err := ClientTLSConfig(ClientTLSOptions{CertFile: missing, KeyFile: missing}); err == nil {
		t.Error("missing client certificate accepted")
	}
	if _, err := ClientTLSConfig(ClientTLSOptions{CertFile: missing}); err == nil {
		t.Error("client cert without key accepted")
	}
	// The dev default is unchanged: no client certificates asked for.
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if conf.ClientAuth != tls.NoClientCert || conf.ClientCAs != nil {
		t.Errorf("dev default asks for client certificates: %v", conf.ClientAuth)
	}
}

func TestClientCertIdentity(t *testing.T) {
	u, _ := url.Parse("spiffe://felix/worker")
	for _, c := range []struct {
		cert *x509.Certificate
		want string
	}{
		{&x509.Certificate{Subject: pkix.Name{CommonName: "cn"}, DNSNames: []string{"dns"}}, "cn"},
		{&x509.Certificate{DNSNames: []string{"a.example", "b.example"}}, "a.example"},
		{&x509.Certificate{EmailAddresses: []string{"ops@example.com"}}, "ops@example.com"},
		{&x509.Certificate{IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}, "10.0.0.1"},
		{&x509.Certificate{URIs: []*url.URL{u}}, "spiffe://felix/worker"},
		{&x509.Certificate{}, ""},
	} {
		cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.cert}}
		if got := ClientCertIdentity(cs); got != c.want {
			t.Errorf("identity %q, want %q", got, c.want)
		}
	}
	if ClientCertIdentity(nil) != "" || ClientCertIdentity(&tls.ConnectionState{}) != "" {
		t.Error("identity without a certificate")
	}
}

// The client CA file is reloaded when it changes: after it is replaced,
// certificates of the new CA are accepted and those of the old one refused;
// a broken replacement keeps the CAs in use.
func TestClientCAReload(t *testing.T) {
	dir := t.TempDir()
	oldCA := newTestCA(t, dir, "old")
	newCA := newTestCA(t, dir, "new")
	oldCert, oldKey := oldCA.issue(t, dir, "alice-old", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})
	newCert, newKey := newCA.issue(t, dir, "alice-new", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})
	caFile := filepath.Join(dir, "clients-ca.pem")
	replace := func(src []byte, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(caFile, src, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(caFile, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := time.Now().Add(-time.Hour)
	replace(read(oldCA.file), base)

	log, logs := newTestLogger()
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: caFile, RequireClientCert: true,
		CertCheckInterval: time.Nanosecond}, log) // look at the file at every handshake
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, conf).Addr().String()
	serverCA := filepath.Join(dir, DevCertFile)
	// Clients with and without ALPN take different paths through the
	// server's configuration hook; both must see the reloaded CAs.
	client := func(certFile, keyFile string, alpn bool) *tls.Config {
		c, err := ClientTLSConfig(ClientTLSOptions{CAFile: serverCA, CertFile: certFile, KeyFile: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		if alpn {
			c.NextProtos = []string{"felix"}
		}
		return c
	}
	expect := func(stage, certFile, keyFile string, ok bool) {
		t.Helper()
		for _, alpn := range []bool{false, true} {
			err := roundTrip(t, addr, client(certFile, keyFile, alpn))
			if ok && err != nil {
				t.Fatalf("%s (alpn %v): %v", stage, alpn, err)
			}
			if !ok && (err == nil || !strings.Contains(err.Error(), "unknown certificate authority")) {
				t.Fatalf("%s (alpn %v): err = %v, want unknown certificate authority", stage, alpn, err)
			}
		}
	}
	expect("old CA, old cert", oldCert, oldKey, true)
	expect("old CA, new cert", newCert, newKey, false)

	replace(read(newCA.file), base.Add(time.Minute))
	expect("new CA, new cert", newCert, newKey, true)
	expect("new CA, old cert", oldCert, oldKey, false)

	replace([]byte("not a certificate"), base.Add(2*time.Minute))
	expect("broken file keeps the new CA", newCert, newKey, true)
	if !strings.Contains(logs.String(), "tls client CA reload failed; keeping the previous CAs") {
		t.Errorf("failed reload not logged:\n%s", logs.String())
	}
}
