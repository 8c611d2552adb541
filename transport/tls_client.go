package transport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// DefaultServerName is the name clients verify when none is given; it
// matches the development certificate.
const DefaultServerName = "localhost"

// ClientTLSOptions configures how a client verifies the broker. The zero
// value verifies against the system roots for the name "localhost".
type ClientTLSOptions struct {
	// CAFile is a PEM bundle of CAs to trust (e.g. a broker's
	// dev-cert.pem). Added to RootCAs when both are set.
	CAFile string
	// Insecure skips certificate verification. For development only.
	Insecure bool
	// ServerName is the name verified in the broker's certificate.
	// Default "localhost".
	ServerName string
	// RootCAs are CAs to trust. Nil (and no CAFile) means the system roots.
	RootCAs *x509.CertPool
	// CertFile and KeyFile are the PEM client certificate and key shown
	// to a broker that asks for one (mutual TLS), whatever CAs the broker
	// says it accepts. Both or neither.
	CertFile, KeyFile string
}

// ClientTLSConfig builds a client TLS configuration: TLS 1.3 minimum, no
// ALPN offered (like the reference client), the server name and roots from
// opts.
func ClientTLSConfig(opts ClientTLSOptions) (*tls.Config, error) {
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         opts.ServerName,
		RootCAs:            opts.RootCAs,
		InsecureSkipVerify: opts.Insecure, //nolint:gosec // explicit opt-in for development
	}
	if conf.ServerName == "" {
		conf.ServerName = DefaultServerName
	}
	if opts.CAFile != "" {
		pool, err := readCertPool("CA", opts.CAFile, opts.RootCAs)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	if opts.CertFile != "" || opts.KeyFile != "" {
		cert, err := loadKeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, err
		}
		// Always show it: Go would otherwise send none when the broker's
		// list of acceptable CAs does not name its issuer, and the broker
		// would report a missing certificate instead of a bad one.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return conf, nil
}

// readCertPool reads a PEM bundle of CA certificates into a copy of base
// (a new pool when base is nil). what names the file in errors. The whole
// bundle must load: a CERTIFICATE block that does not parse, or one cut
// off, is an error (naming the block) rather than a CA silently left out.
// Blocks of other types and text between blocks are ignored, as by
// x509.CertPool.AppendCertsFromPEM.
func readCertPool(what, path string, base *x509.CertPool) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: read %s file %s: %w", what, path, err)
	}
	pool := x509.NewCertPool()
	if base != nil {
		pool = base.Clone()
	}
	n, added, rest := 0, 0, pemBytes
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		n++
		if len(block.Headers) != 0 {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tls: %s file %s: certificate %d: %w", what, path, n, err)
		}
		pool.AddCert(cert)
		added++
	}
	if begins := bytes.Count(pemBytes, []byte("-----BEGIN CERTIFICATE-----")); begins > n {
		return nil, fmt.Errorf("tls: %s file %s: %d of its %d certificate blocks are malformed or cut off", what, path, begins-n, begins)
	}
	if added == 0 {
		return nil, fmt.Errorf("tls: %s file %s holds no PEM certificate", what, path)
	}
	return pool, nil
}

// CertPoolFromFile returns the system's roots (an empty pool where the
// system has none) with the CA certificates of the PEM bundle at path
// added: for HTTPS clients of a server whose certificate a private CA (or
// the development certificate) signs, while certificates the system
// trusts still verify. The whole bundle must load, as for
// ClientTLSOptions.CAFile.
func CertPoolFromFile(path string) (*x509.CertPool, error) {
	base, err := x509.SystemCertPool()
	if err != nil {
		base = nil
	}
	return readCertPool("CA", path, base)
}
