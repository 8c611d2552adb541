package transport

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// A renewal that installs an expired certificate (an old backup restored,
// a renewal job that copied the wrong file) must not replace a valid one:
// every client would refuse it. The reload fails, says why, and the
// previous certificate keeps serving.
func TestHunt4ReloadRefusesExpiredCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now())
	goodCopy := dir + "/good.crt"
	replaceFiles(t, time.Now(), [2]string{certFile, goodCopy})
	oldCert, oldKey := writeCertFiles(t, dir, "expired.crt", "expired.key", time.Now().Add(-2*devCertValidity))

	log, logs := newTestLogger()
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{CheckInterval: -1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, EchoALPN(&tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: r.GetCertificate})).Addr().String()

	replaceFiles(t, time.Now().Add(time.Minute), [2]string{oldCert, certFile}, [2]string{oldKey, keyFile})
	err = r.Reload()
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Reload of an expired certificate: err = %v, want one saying it expired", err)
	}
	if !strings.Contains(logs.String(), "keeping the previous certificate") {
		t.Errorf("refused reload not logged:\n%s", logs)
	}
	if err := roundTrip(t, addr, serverCertTrust(t, goodCopy)); err != nil {
		t.Fatalf("previous certificate not kept: %v", err)
	}
}

// At start an expired certificate is still loaded (the broker runs and
// picks up the late renewal) but the log says it has expired.
func TestHunt4StartWithExpiredCertificateLogsIt(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, "server.crt", "server.key", time.Now().Add(-2*devCertValidity))
	log, logs := newTestLogger()
	if _, err := ServerTLSConfig(TLSOptions{CertFile: certFile, KeyFile: keyFile}, log); err != nil {
		t.Fatalf("start with an expired certificate: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "expired at") {
		t.Errorf("expired certificate not reported:\n%s", out)
	}
}
