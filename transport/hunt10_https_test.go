package transport

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveHTTPS serves a handler answering the request's protocol over TLS
// with conf on 127.0.0.1, as felix serve --controlplane-tls does (a TLS
// listener under an http.Server), until the test ends.
func serveHTTPS(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, conf))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// httpsGet GETs url over a fresh connection with client TLS settings
// conf, returning the protocol the server saw and the certificate it
// showed.
func httpsGet(url string, conf *tls.Config, h2 bool) (proto string, leaf *x509.Certificate, err error) {
	tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: h2, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	return string(b), resp.TLS.PeerCertificates[0], nil
}

func trustPool(t *testing.T, files ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(b) {
			t.Fatalf("no certificate in %s", f)
		}
	}
	return pool
}

// The HTTPS configuration of a broker whose certificate files are
// renewed shows the new certificate once the files change (as QUIC does),
// over HTTP/1.1 and HTTP/2, and never the old one after that; a client
// limited to TLS 1.2 is refused.
func TestHunt10HTTPSConfigFollowsCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	oldCopy := filepath.Join(dir, "old.crt")
	replaceFiles(t, time.Now(), [2]string{certFile, oldCopy})
	newCert, newKey := writeCertFiles(t, dir, "new.crt", "new.key", time.Now())

	// A check interval of 1ns: every handshake looks at the files.
	conf, files, err := NewServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile, CertCheckInterval: time.Nanosecond}, nil)
	if err != nil || files == nil {
		t.Fatal(err)
	}
	url := serveHTTPS(t, HTTPSConfig(conf))
	trustOld := &tls.Config{RootCAs: trustPool(t, oldCopy)}
	trustNew := &tls.Config{RootCAs: trustPool(t, newCert)}
	for _, h2 := range []bool{false, true} {
		proto, _, err := httpsGet(url, trustOld, h2)
		want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if err != nil || proto != want {
			t.Fatalf("first certificate (h2 %v): %q, %v; want %s", h2, proto, err, want)
		}
	}
	replaceFiles(t, time.Now().Add(time.Minute), [2]string{newCert, certFile}, [2]string{newKey, keyFile})
	for _, h2 := range []bool{false, true} {
		if _, _, err := httpsGet(url, trustNew, h2); err != nil {
			t.Fatalf("renewed certificate (h2 %v): %v", h2, err)
		}
		if _, _, err := httpsGet(url, trustOld, h2); err == nil {
			t.Fatalf("old certificate still shown after the renewal (h2 %v)", h2)
		}
	}
	// A certificate renewed again, then reloaded on demand (SIGHUP).
	third, thirdKey := writeCertFiles(t, dir, "third.crt", "third.key", time.Now())
	replaceFiles(t, time.Now().Add(2*time.Minute), [2]string{third, certFile}, [2]string{thirdKey, keyFile})
	if err := files.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := httpsGet(url, &tls.Config{RootCAs: trustPool(t, third)}, false); err != nil {
		t.Fatalf("certificate after Reload: %v", err)
	}

	_, _, err = httpsGet(url, &tls.Config{RootCAs: trustPool(t, third), MaxVersion: tls.VersionTLS12}, false)
	if err == nil {
		t.Fatal("a TLS 1.2 client was served")
	}
}

// A broker requiring client certificates (mTLS) on QUIC does not ask for
// one on its HTTPS API, which authenticates with bearer tokens: a client
// without a certificate is served, and so is one with a certificate of a
// CA the broker does not know (not asked for, not checked).
func TestHunt10HTTPSConfigAsksNoClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	stranger := newTestCA(t, dir, "stranger")
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: ca.file, RequireClientCert: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	devCert := devCertPath(dir)
	// The broker itself refuses a QUIC client without a certificate.
	addr := startEcho(t, conf).Addr().String()
	if err := roundTrip(t, addr, serverCertTrust(t, devCert)); err == nil {
		t.Fatal("QUIC without a client certificate accepted under RequireClientCert")
	}
	https := HTTPSConfig(conf)
	if https.ClientAuth != tls.NoClientCert || https.ClientCAs != nil || https.GetConfigForClient != nil {
		t.Fatalf("HTTPSConfig kept client authentication: %v %v", https.ClientAuth, https.GetConfigForClient != nil)
	}
	url := serveHTTPS(t, https)
	if _, leaf, err := httpsGet(url, &tls.Config{RootCAs: trustPool(t, devCert)}, true); err != nil || leaf == nil {
		t.Fatalf("HTTPS without a client certificate: %v", err)
	}
	certFile, keyFile := stranger.issue(t, dir, "mallory", &x509.Certificate{Subject: pkix.Name{CommonName: "mallory"}})
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{RootCAs: trustPool(t, devCert), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }}
	if _, _, err := httpsGet(url, withCert, false); err != nil {
		t.Fatalf("HTTPS with an unknown client certificate: %v", err)
	}
	// The broker's own configuration is untouched by HTTPSConfig.
	if conf.ClientAuth != tls.RequireAndVerifyClientCert || conf.GetConfigForClient == nil {
		t.Fatalf("broker configuration changed: %v", conf.ClientAuth)
	}
}

// CertPoolFromFile refuses a file that is not wholly a CA bundle (as the
// QUIC CA file is refused) and the pool it returns verifies the CA's
// certificates while keeping the system's roots.
func TestHunt10CertPoolFromFile(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	good, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, path := range map[string]string{
		"missing":    filepath.Join(dir, "nope.pem"),
		"empty":      write("empty.pem", nil),
		"text":       write("text.pem", []byte("not a certificate\n")),
		"key only":   keyFile,
		"cut off":    write("cut.pem", good[:len(good)/2]),
		"good + cut": write("goodcut.pem", append(append([]byte{}, good...), good[:len(good)-40]...)),
		"bad body":   write("bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
		"directory":  dir,
	} {
		if _, err := CertPoolFromFile(path); err == nil {
			t.Errorf("%s: CertPoolFromFile succeeded", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	pool, err := CertPoolFromFile(write("bundle.pem", append(append([]byte("# comment\n"), good...), []byte("trailing text\n")...)))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Fatalf("the bundle's certificate does not verify with the pool: %v", err)
	}
	sys, err := x509.SystemCertPool()
	if err == nil && !sys.Equal(x509.NewCertPool()) && pool.Equal(x509.NewCertPool()) {
		t.Fatal("the system's roots were dropped")
	}
	var unknown x509.UnknownAuthorityError
	other, otherKey := writeCertFiles(t, dir, "other.crt", "other.key", time.Now())
	oc, err := tls.LoadX509KeyPair(other, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); !errors.As(err, &unknown) {
		t.Fatalf("another certificate verified with the pool: %v", err)
	}
}
