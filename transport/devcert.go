package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Development certificate file names inside TLSOptions.DataDir.
const (
	DevCertFile = "dev-cert.pem"
	DevKeyFile  = "dev-key.pem"
)

// devCertValidity is how long a generated development certificate is valid.
const devCertValidity = 365 * 24 * time.Hour

func devCertPath(dir string) string { return filepath.Join(dir, DevCertFile) }
func devKeyPath(dir string) string  { return filepath.Join(dir, DevKeyFile) }

// generateDevCert creates an in-memory self-signed ECDSA P-256 certificate
// for localhost, 127.0.0.1 and ::1.
func generateDevCert() (tls.Certificate, error) {
	certPEM, keyPEM, err := newDevCertPEM(time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// newDevCertPEM returns a PEM certificate and PKCS#8 key valid from now
// (minus an hour for clock skew) for devCertValidity.
func newDevCertPEM(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate dev key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("tls: dev cert serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "felix development certificate", Organization: []string{"Felix"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCertValidity),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: clients pin this file as their CA
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: create dev cert: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: marshal dev key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// dataDirMu serializes lockDataDirFiles within the process; lockDir does
// it between processes.
var dataDirMu sync.Mutex

// lockDataDirFiles serializes the load-or-create of files in dir (the
// development certificate, the reset key) among the callers in this
// process and in others, so that starts at the same time on a fresh dir
// agree on one file. The lock is held until unlock is called. When the
// directory cannot be locked, err says why and only the in-process lock is
// held; unlock must still be called.
func lockDataDirFiles(dir string) (unlock func(), err error) {
	dataDirMu.Lock()
	release, err := lockDir(dir)
	if err != nil {
		release = func() {}
	}
	return func() { release(); dataDirMu.Unlock() }, err
}

// persistentDevCert loads the development certificate from dir, or creates
// it (again) when it is missing, corrupt, expired or not valid yet; one
// this process may not read is an error (see readableDevCert).
// created reports whether a new certificate was written. Concurrent calls,
// in this process or others, on the same dir end with one certificate:
// each holds a lock on dir while it looks and writes, so none pairs its
// key with another's certificate or serves a certificate that is not the
// one in the file.
func persistentDevCert(dir string, log *slog.Logger) (cert tls.Certificate, created bool, err error) {
	certFile, keyFile := devCertPath(dir), devKeyPath(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: create data dir %s: %w", dir, err)
	}
	unlock, err := lockDataDirFiles(dir)
	defer unlock()
	if err != nil {
		// Not fatal: only a concurrent first start on this dir needs it.
		log.Warn("tls: cannot lock the data dir while loading the development certificate", "dir", dir, "err", err)
	}

	if err := readableDevCert(certFile, keyFile); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, reason := loadDevCert(certFile, keyFile, time.Now())
	if reason == "" {
		keepKeyPrivate(keyFile, log)
		return cert, false, nil
	}
	if reason != "missing" {
		log.Warn("tls: regenerating development certificate", "cert", certFile, "reason", reason)
	}
	certPEM, keyPEM, err := newDevCertPEM(time.Now())
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, true, err
}

// readableDevCert refuses a stored development certificate or key that
// exists but this process may not read (a data dir first used as root,
// then by a service user): replacing it would break every client that
// pinned the certificate, and the operator's fix is a chown or chmod.
func readableDevCert(certFile, keyFile string) error {
	for _, f := range []string{certFile, keyFile} {
		fh, err := os.Open(f)
		if err == nil {
			fh.Close()
			continue
		}
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("tls: development certificate: %w (give the broker's user read access, or remove the file to generate a new certificate, which clients must then trust again)", err)
		}
	}
	return nil
}

// keepKeyPrivate makes a stored development key readable by its owner only
// (0600, as it was written) when its mode lets others read it, and logs
// that it did.
func keepKeyPrivate(keyFile string, log *slog.Logger) {
	if runtime.GOOS == "windows" {
		return // no Unix modes
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		log.Warn("tls: development key is readable by other users; make it 0600", "key", keyFile,
			"mode", st.Mode().Perm().String(), "err", err)
		return
	}
	log.Warn("tls: development key was readable by other users; changed its mode to 0600", "key", keyFile,
		"was", st.Mode().Perm().String())
}

// loadDevCert returns the stored development certificate, or a reason to
// regenerate it ("missing", an error text, "expired ..." or "not valid
// before ...").
func loadDevCert(certFile, keyFile string, now time.Time) (tls.Certificate, string) {
	_, errC := os.Stat(certFile)
	_, errK := os.Stat(keyFile)
	if os.IsNotExist(errC) && os.IsNotExist(errK) {
		return tls.Certificate{}, "missing"
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "unreadable: " + err.Error()
	}
	if cert.Leaf == nil {
		return tls.Certificate{}, "unreadable: no leaf certificate"
	}
	if !now.Before(cert.Leaf.NotAfter) {
		return tls.Certificate{}, "expired at " + cert.Leaf.NotAfter.UTC().Format(time.RFC3339)
	}
	if now.Before(cert.Leaf.NotBefore) {
		return tls.Certificate{}, "not valid before " + cert.Leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return cert, ""
}

// writeFileAtomic writes data to path through a temporary file and a rename,
// so a crash never leaves a half-written key or certificate.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	return nil
}
