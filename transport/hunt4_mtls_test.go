package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dialResume dials addr with conf (which may carry a session cache), lets
// the handshake's session ticket arrive with one round trip, and reports
// whether the TLS session was resumed.
func dialResume(t *testing.T, addr string, conf *tls.Config) (resumed bool, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, addr, conf, Options{}, nil)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return false, err
	}
	if _, err := str.Write([]byte{1}); err != nil {
		return false, err
	}
	_ = str.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := str.Read(b[:]); err != nil {
		return false, err
	}
	return conn.ConnectionState().TLS.DidResume, nil
}

// Removing a CA from the client CA bundle must lock out its clients at
// once. A client that resumes a TLS session (session tickets; any client
// with a session cache, e.g. a Rust client) skips certificate
// verification; its certificate must still chain to the CAs of the
// moment, or be refused.
func TestHunt4ClientCARemovalAppliesToResumedSessions(t *testing.T) {
	dir := t.TempDir()
	oldCA := newTestCA(t, dir, "old")
	newCA := newTestCA(t, dir, "new")
	certFile, keyFile := oldCA.issue(t, dir, "alice", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})
	caFile := filepath.Join(dir, "clients-ca.pem")
	copyFile := func(src string, mtime time.Time) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(caFile, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(oldCA.file, time.Now().Add(-time.Hour))
	conf, files, err := NewServerTLS(TLSOptions{DataDir: dir, ClientCAFile: caFile, RequireClientCert: true,
		CertCheckInterval: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, conf).Addr().String()

	for _, alpn := range []bool{false, true} {
		client, err := ClientTLSConfig(ClientTLSOptions{CAFile: filepath.Join(dir, DevCertFile), CertFile: certFile, KeyFile: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		if alpn {
			client.NextProtos = []string{"felix"}
		}
		copyFile(oldCA.file, time.Now().Add(-time.Hour))
		if err := files.Reload(); err != nil {
			t.Fatal(err)
		}
		if _, err := dialResume(t, addr, client); err != nil {
			t.Fatalf("alpn %v: first connection: %v", alpn, err)
		}
		resumed, err := dialResume(t, addr, client)
		if err != nil {
			t.Fatalf("alpn %v: second connection: %v", alpn, err)
		}
		if !resumed {
			t.Skipf("alpn %v: the session was not resumed; nothing to check", alpn)
		}

		copyFile(newCA.file, time.Now()) // the old CA is revoked
		if err := files.Reload(); err != nil {
			t.Fatal(err)
		}
		resumed, err = dialResume(t, addr, client)
		if err == nil {
			t.Fatalf("alpn %v: client of a removed CA served (resumed session: %v)", alpn, resumed)
		}
		if !strings.Contains(err.Error(), "unknown certificate authority") {
			t.Errorf("alpn %v: refusal does not name the certificate: %v", alpn, err)
		}
	}
}

// A client CA bundle with a block that is not a certificate (a garbled
// entry, a file cut off mid-write) is refused as a whole: loading only the
// good part would silently lock out the clients of the lost CA while the
// log says the reload succeeded. The previous CAs stay in use and the
// error names the file and the bad block.
func TestHunt4ClientCABundleWithBadBlockRefused(t *testing.T) {
	dir := t.TempDir()
	caA := newTestCA(t, dir, "a")
	caB := newTestCA(t, dir, "b")
	bobCert, bobKey := caB.issue(t, dir, "bob", &x509.Certificate{Subject: pkix.Name{CommonName: "bob"}})
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caFile := filepath.Join(dir, "clients-ca.pem")
	if err := os.WriteFile(caFile, append(read(caA.file), read(caB.file)...), 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := newTestLogger()
	conf, files, err := NewServerTLS(TLSOptions{DataDir: dir, ClientCAFile: caFile, RequireClientCert: true,
		CertCheckInterval: -1}, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, conf).Addr().String()
	bob, err := ClientTLSConfig(ClientTLSOptions{CAFile: filepath.Join(dir, DevCertFile), CertFile: bobCert, KeyFile: bobKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, addr, bob); err != nil {
		t.Fatalf("bob before the reload: %v", err)
	}

	for name, bundle := range map[string][]byte{
		"garbled second certificate": append(read(caA.file),
			[]byte("-----BEGIN CERTIFICATE-----\nTUlJQm9nYXJibGVk\n-----END CERTIFICATE-----\n")...),
		"cut off mid-certificate": append(read(caA.file), read(caB.file)[:200]...),
	} {
		if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
			t.Fatal(err)
		}
		err := files.Reload()
		if err == nil || !strings.Contains(err.Error(), caFile) {
			t.Errorf("%s: Reload err = %v, want an error naming %s", name, err, caFile)
		}
		if err := roundTrip(t, addr, bob); err != nil {
			t.Errorf("%s: previous CAs not kept, bob refused: %v", name, err)
		}
	}
	if !strings.Contains(logs.String(), "keeping the previous CAs") {
		t.Errorf("refused bundle not logged:\n%s", logs)
	}
	// The same file is refused at start and by clients (ClientTLSOptions.CAFile).
	if _, err := ClientTLSConfig(ClientTLSOptions{CAFile: caFile}); err == nil {
		t.Error("client accepted a CA file with a bad block")
	}
}
