package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
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

// persistentDevCert loads the development certificate from dir, or creates
// it (again) when it is missing, unreadable or expired. created reports
// whether a new certificate was written.
func persistentDevCert(dir string, log *slog.Logger) (cert tls.Certificate, created bool, err error) {
	certFile, keyFile := devCertPath(dir), devKeyPath(dir)
	cert, reason := loadDevCert(certFile, keyFile, time.Now())
	if reason == "" {
		return cert, false, nil
	}
	if reason != "missing" {
		log.Warn("tls: regenerating development certificate", "cert", certFile, "reason", reason)
	}
	certPEM, keyPEM, err := newDevCertPEM(time.Now())
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("tls: create data dir %s: %w", dir, err)
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

// loadDevCert returns the stored development certificate, or a reason to
// regenerate it ("missing", an error text, or "expired ...").
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
