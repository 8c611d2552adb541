package transport

import (
	"crypto/tls"
	"crypto/x509"
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
		pemBytes, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file %s: %w", opts.CAFile, err)
		}
		pool := x509.NewCertPool()
		if opts.RootCAs != nil {
			pool = opts.RootCAs.Clone()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", opts.CAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}
