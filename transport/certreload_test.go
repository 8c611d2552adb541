package transport

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// serverCertTrust returns a client config trusting exactly the certificate
// in certFile.
func serverCertTrust(t *testing.T, certFile string) *tls.Config {
	t.Helper()
	c, err := ClientTLSConfig(ClientTLSOptions{CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replaceFiles copies the PEM files at src over dst and gives them a new
// modification time, as a certificate renewal would.
func replaceFiles(t *testing.T, mtime time.Time, pairs ...[2]string) {
	t.Helper()
	for _, p := range pairs {
		data, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p[1], mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCertReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	oldCopy := filepath.Join(dir, "old.crt")
	replaceFiles(t, time.Now(), [2]string{certFile, oldCopy})
	newCert, newKey := writeCertFiles(t, dir, "new.crt", "new.key", time.Now())

	clock := testclock.New()
	log, logs := newTestLogger()
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{CheckInterval: 10 * time.Second, Now: clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	conf := EchoALPN(&tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: r.GetCertificate})
	addr := startEcho(t, conf).Addr().String()
	trustOld, trustNew := serverCertTrust(t, oldCopy), serverCertTrust(t, newCert)
	if err := roundTrip(t, addr, trustOld); err != nil {
		t.Fatalf("first certificate: %v", err)
	}

	replaceFiles(t, time.Now().Add(time.Minute), [2]string{newCert, certFile}, [2]string{newKey, keyFile})
	// Not checked again before the interval has passed.
	clock.Advance(5 * time.Second)
	if err := roundTrip(t, addr, trustOld); err != nil {
		t.Fatalf("old certificate within the check interval: %v", err)
	}
	clock.Advance(5 * time.Second)
	if err := roundTrip(t, addr, trustNew); err != nil {
		t.Fatalf("renewed certificate after the interval: %v", err)
	}
	if err := roundTrip(t, addr, trustOld); err == nil {
		t.Error("old certificate still served after the reload")
	}
	if !strings.Contains(logs.String(), "tls certificate reloaded") {
		t.Errorf("reload not logged:\n%s", logs)
	}
}

func TestCertReloadKeepsOldOnBadFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	oldCopy := filepath.Join(dir, "old.crt")
	replaceFiles(t, time.Now(), [2]string{certFile, oldCopy})
	otherCert, otherKey := writeCertFiles(t, dir, "other.crt", "other.key", time.Now())

	log, logs := newTestLogger()
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{CheckInterval: -1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	conf := EchoALPN(&tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: r.GetCertificate})
	addr := startEcho(t, conf).Addr().String()
	trustOld := serverCertTrust(t, oldCopy)

	// Half a renewal: a new certificate with the old key.
	replaceFiles(t, time.Now().Add(time.Minute), [2]string{otherCert, certFile})
	if err := r.Reload(); err == nil {
		t.Fatal("mismatched certificate and key reloaded")
	}
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("garbage key reloaded")
	}
	if err := roundTrip(t, addr, trustOld); err != nil {
		t.Fatalf("previous certificate not kept: %v", err)
	}
	if !strings.Contains(logs.String(), "keeping the previous certificate") {
		t.Errorf("failed reload not logged:\n%s", logs)
	}
	// The renewal completes: an explicit Reload picks it up.
	replaceFiles(t, time.Now().Add(2*time.Minute), [2]string{otherKey, keyFile})
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, addr, serverCertTrust(t, otherCert)); err != nil {
		t.Fatalf("renewed certificate after Reload: %v", err)
	}
}

// ServerTLSConfig with files serves them through a reloader.
func TestServerTLSConfigReloadsFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	newCert, newKey := writeCertFiles(t, dir, "new.crt", "new.key", time.Now())
	conf, r, err := NewServerTLS(TLSOptions{CertFile: certFile, KeyFile: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil || conf.GetCertificate == nil || len(conf.Certificates) != 0 {
		t.Fatal("files not served through a CertReloader")
	}
	addr := startEcho(t, conf).Addr().String()
	replaceFiles(t, time.Now().Add(time.Minute), [2]string{newCert, certFile}, [2]string{newKey, keyFile})
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, addr, serverCertTrust(t, newCert)); err != nil {
		t.Fatalf("renewed certificate: %v", err)
	}
	if _, r, _ := NewServerTLS(TLSOptions{}, nil); r != nil {
		t.Error("a reloader for the dev certificate")
	}
}

// A renewal that rewrote the files with the same sizes and modification
// times (within the file system's time granularity, or by a tool that
// restores them) was never loaded: the reloader compared only those. It
// now compares the files' content.
func TestCertReloadSeesSameSizeSameMtimeRewrite(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	size := func(name string) int64 {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	// A new pair of the same sizes (ECDSA signatures vary by a byte or
	// two: draw until both match).
	var newCert, newKey string
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("no certificate pair of the same sizes in 200 tries")
		}
		newCert, newKey = writeCertFiles(t, dir, "new.crt", "new.key", time.Now())
		if size(newCert) == size(certFile) && size(newKey) == size(keyFile) {
			break
		}
	}
	clock := testclock.New()
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{CheckInterval: 10 * time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	old := r.Certificate().Leaf.SerialNumber
	st, err := os.Stat(certFile)
	if err != nil {
		t.Fatal(err)
	}
	replaceFiles(t, st.ModTime(), [2]string{newCert, certFile}, [2]string{newKey, keyFile})
	clock.Advance(10 * time.Second)
	got, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Leaf.SerialNumber.Cmp(old) == 0 {
		t.Fatal("same-size, same-mtime renewal not loaded: the old certificate is still served")
	}
}
