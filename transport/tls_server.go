package transport

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// TLSOptions selects the broker's certificate and client authentication.
// The zero value gives an ephemeral development certificate and no client
// certificates.
type TLSOptions struct {
	// CertFile and KeyFile are PEM files holding the certificate chain and
	// its private key. Both or neither must be set; when set, they win over
	// the development certificate, and they are reloaded when they change
	// (see CertReloader).
	CertFile, KeyFile string
	// CertCheckInterval is the least time between two looks at CertFile,
	// KeyFile and ClientCAFile for changes. Default 10 s; negative: never
	// reload.
	CertCheckInterval time.Duration
	// ClientCAFile is a PEM bundle of the CAs that sign client
	// certificates. When set, a client certificate, if presented, must
	// chain to one of them (and be valid for client authentication). It is
	// reloaded when it changes, like the certificate files; a bad new file
	// keeps the previous CAs.
	ClientCAFile string
	// RequireClientCert refuses clients without a valid client certificate
	// (mutual TLS). It requires ClientCAFile.
	RequireClientCert bool
	// DataDir, when not empty, keeps the development certificate in
	// DataDir/dev-cert.pem and DataDir/dev-key.pem so that it survives
	// restarts (and clients can pin dev-cert.pem as their CA). Empty means
	// an in-memory certificate that changes at every start.
	DataDir string
}

// ServerTLSConfig builds the broker's TLS configuration: TLS 1.3 minimum,
// the certificate chosen by opts (files are reloaded on change), client
// certificate checks per opts, no NextProtos and the ALPN echo hook (see the
// package doc). It logs one line naming the certificate in use. A nil log
// discards.
func ServerTLSConfig(opts TLSOptions, log *slog.Logger) (*tls.Config, error) {
	conf, _, err := NewServerTLS(opts, log)
	return conf, err
}

// TLSFiles reloads the files behind a server TLS configuration on demand
// (e.g. on SIGHUP): the certificate and key files and the client CA file,
// whichever were given. Between calls they are still reloaded on change
// (TLSOptions.CertCheckInterval).
type TLSFiles struct {
	cert *CertReloader
	ca   *fileWatch[x509.CertPool]
}

// Reload loads every file now, whether or not it changed. What fails to
// load keeps its previous value; the errors are returned joined. A nil
// TLSFiles (no files: a development certificate) does nothing.
func (f *TLSFiles) Reload() error {
	if f == nil {
		return nil
	}
	var errs []error
	if f.cert != nil {
		errs = append(errs, f.cert.Reload())
	}
	if f.ca != nil {
		errs = append(errs, f.ca.reload())
	}
	return errors.Join(errs...)
}

// NewServerTLS is ServerTLSConfig that also returns the TLSFiles behind the
// configuration, to reload them on demand; nil when no file is involved.
func NewServerTLS(opts TLSOptions, log *slog.Logger) (*tls.Config, *TLSFiles, error) {
	log = orDiscard(log)
	conf := &tls.Config{MinVersion: tls.VersionTLS13}
	clientCAs, err := setClientAuth(conf, opts, log)
	if err != nil {
		return nil, nil, err
	}
	files := &TLSFiles{ca: clientCAs}
	var cert tls.Certificate
	switch {
	case opts.CertFile != "" || opts.KeyFile != "":
		files.cert, err = NewCertReloader(opts.CertFile, opts.KeyFile,
			CertReloaderOptions{CheckInterval: opts.CertCheckInterval, Log: log})
		if err != nil {
			return nil, nil, err
		}
		conf.GetCertificate = files.cert.GetCertificate
		log.Info("tls certificate", append([]any{"source", "files (reloaded on change)", "cert", opts.CertFile,
			"key", opts.KeyFile}, certAttrs(*files.cert.Certificate())...)...)
	case opts.DataDir != "":
		var created bool
		cert, created, err = persistentDevCert(opts.DataDir, log)
		if err != nil {
			return nil, nil, err
		}
		src := "dev certificate (reused)"
		if created {
			src = "dev certificate (generated)"
		}
		log.Info("tls certificate", append([]any{"source", src, "cert", devCertPath(opts.DataDir)},
			certAttrs(cert)...)...)
	default:
		cert, err = generateDevCert()
		if err != nil {
			return nil, nil, err
		}
		log.Info("tls certificate", append([]any{"source", "ephemeral dev certificate"}, certAttrs(cert)...)...)
	}
	if files.cert == nil {
		conf.Certificates = []tls.Certificate{cert}
		if files.ca == nil {
			files = nil // nothing to reload
		}
	}
	if clientCAs == nil {
		return EchoALPN(conf), files, nil
	}
	// Each handshake verifies client certificates against the CAs as the
	// file holds them now.
	return echoALPN(conf, func(c *tls.Config) { c.ClientCAs = clientCAs.current() }), files, nil
}

// setClientAuth configures client certificate verification from opts. The
// CA file is watched like the certificate files (CertCheckInterval); the
// returned watch is nil without ClientCAFile.
func setClientAuth(conf *tls.Config, opts TLSOptions, log *slog.Logger) (*fileWatch[x509.CertPool], error) {
	if opts.ClientCAFile == "" {
		if opts.RequireClientCert {
			return nil, errClientCANeeded
		}
		return nil, nil
	}
	file := opts.ClientCAFile
	w, err := newFileWatch(CertReloaderOptions{CheckInterval: opts.CertCheckInterval, Log: log},
		"tls client CA", "CAs", []string{file},
		func() (*x509.CertPool, error) { return readCertPool("client CA", file, nil) },
		func(*x509.CertPool) []any { return []any{"ca", file} })
	if err != nil {
		return nil, err
	}
	conf.ClientCAs = w.current()
	conf.ClientAuth = tls.VerifyClientCertIfGiven
	if opts.RequireClientCert {
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	log.Info("tls client certificates", "ca", file, "required", opts.RequireClientCert, "reloaded_on_change", w.interval > 0)
	return w, nil
}

// loadKeyPair loads a PEM certificate and key, with errors that name the
// offending file.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" {
		return tls.Certificate{}, errors.New("tls: key file set but cert file empty")
	}
	if keyFile == "" {
		return tls.Certificate{}, errors.New("tls: cert file set but key file empty")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: read cert file %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: read key file %s: %w", keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: load key pair %s / %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("tls: parse cert file %s: %w", certFile, err)
		}
	}
	return cert, nil
}

// certAttrs describes a certificate for the startup log line.
func certAttrs(cert tls.Certificate) []any {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil {
		return nil
	}
	sum := sha256.Sum256(leaf.Raw)
	return []any{
		"subject", leaf.Subject.String(),
		"dns", leaf.DNSNames,
		"not_after", leaf.NotAfter.UTC(),
		"sha256", hex.EncodeToString(sum[:]),
	}
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// HTTPSConfig returns a TLS configuration for an HTTPS server that shows
// the same certificate as the broker's configuration conf (from
// NewServerTLS: files reloaded on change, or the development
// certificate), with TLS 1.3 minimum, HTTP/2 and HTTP/1.1 offered by
// ALPN, and no client certificates asked for (HTTP APIs authenticate
// with bearer tokens). conf's other settings (ALPN echo, client CAs) are
// the broker's alone and not copied.
func HTTPSConfig(conf *tls.Config) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		Certificates:   conf.Certificates,
		GetCertificate: conf.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
