package transport

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertCheckInterval is how often a CertReloader looks at its files
// when serving handshakes.
const DefaultCertCheckInterval = 10 * time.Second

// CertReloaderOptions tune a CertReloader; the zero value is valid.
type CertReloaderOptions struct {
	// CheckInterval is the least time between two looks at the files'
	// modification times, made lazily from GetCertificate. Default
	// DefaultCertCheckInterval (10 s); negative disables the checks
	// (reload only with Reload).
	CheckInterval time.Duration
	// Now is the clock for CheckInterval. Default time.Now.
	Now func() time.Time
	// Log receives reloads and failed reloads. Nil discards.
	Log *slog.Logger
}

// CertReloader serves a certificate loaded from PEM files and loads it again
// when the files change (new modification time or size), so certificates
// can be renewed without a restart. A failed load (missing file, bad PEM,
// key not matching the certificate, e.g. while the files are half
// replaced) keeps the previous certificate and is logged; the files are
// tried again when they change again. It is safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	mu        sync.Mutex // guards the fields below and serializes loads
	lastCheck time.Time
	stamp     [2]fileStamp // of certFile and keyFile at the last load attempt
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewCertReloader loads certFile and keyFile; failing that, it returns the
// error.
func NewCertReloader(certFile, keyFile string, opts CertReloaderOptions) (*CertReloader, error) {
	r := &CertReloader{
		certFile: certFile, keyFile: keyFile,
		interval: opts.CheckInterval,
		now:      opts.Now,
		log:      orDiscard(opts.Log),
	}
	if r.interval == 0 {
		r.interval = DefaultCertCheckInterval
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastCheck = r.now()
	r.stamp = r.stat()
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert.Store(&cert)
	return r, nil
}

// Certificate returns the certificate in use.
func (r *CertReloader) Certificate() *tls.Certificate { return r.cert.Load() }

// GetCertificate is a tls.Config.GetCertificate hook: it returns the
// current certificate, first reloading it if CheckInterval has passed since
// the last look and the files changed.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.interval > 0 && r.mu.TryLock() { // a handshake never waits for another's reload
		now := r.now()
		if now.Sub(r.lastCheck) >= r.interval {
			r.lastCheck = now
			if r.stat() != r.stamp {
				_ = r.reloadLocked()
			}
		}
		r.mu.Unlock()
	}
	return r.cert.Load(), nil
}

// Reload loads the files now, whether or not they changed. On error the
// previous certificate stays in use.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastCheck = r.now()
	return r.reloadLocked()
}

func (r *CertReloader) reloadLocked() error {
	r.stamp = r.stat()
	cert, err := loadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("tls certificate reload failed; keeping the previous certificate", "err", err)
		return err
	}
	r.cert.Store(&cert)
	r.log.Info("tls certificate reloaded", append([]any{"cert", r.certFile, "key", r.keyFile}, certAttrs(cert)...)...)
	return nil
}

// stat returns the files' stamps (zero for a file that cannot be read).
func (r *CertReloader) stat() [2]fileStamp {
	var out [2]fileStamp
	for i, name := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(name); err == nil {
			out[i] = fileStamp{mod: st.ModTime(), size: st.Size()}
		}
	}
	return out
}

var errClientCANeeded = errors.New("tls: RequireClientCert needs ClientCAFile (the CAs that sign client certificates)")
