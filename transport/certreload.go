package transport

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
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
	// content, made lazily from GetCertificate. Default
	// DefaultCertCheckInterval (10 s); negative disables the checks
	// (reload only with Reload).
	CheckInterval time.Duration
	// Now is the clock for CheckInterval. Default time.Now.
	Now func() time.Time
	// Log receives reloads and failed reloads. Nil discards.
	Log *slog.Logger
}

// CertReloader serves a certificate loaded from PEM files and loads it again
// when the files' content changes (their SHA-256), so certificates
// can be renewed without a restart. A failed load (missing file, bad PEM,
// key not matching the certificate, e.g. while the files are half
// replaced, or a certificate already expired) keeps the previous
// certificate and is logged with the reason; the files are tried again
// when they change again. It is safe for concurrent use.
type CertReloader struct {
	w *fileWatch[tls.Certificate]
}

// NewCertReloader loads certFile and keyFile; failing that, it returns the
// error. A certificate that has already expired is accepted at this first
// load, so that a broker whose renewal is late still starts and picks the
// renewal up, but it is logged as an error: clients refuse it.
func NewCertReloader(certFile, keyFile string, opts CertReloaderOptions) (*CertReloader, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var started atomic.Bool // after the first load, expired certificates are refused
	w, err := newFileWatch(opts, "tls certificate", "certificate", []string{certFile, keyFile},
		func() (*tls.Certificate, error) {
			cert, err := loadKeyPair(certFile, keyFile)
			if err != nil {
				return nil, err
			}
			if t := now(); !t.Before(cert.Leaf.NotAfter) {
				err := fmt.Errorf("tls: certificate %s expired at %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
				if started.Load() {
					return nil, err
				}
				orDiscard(opts.Log).Error("tls certificate in use has expired; clients will refuse it until it is renewed",
					"err", err)
			}
			return &cert, nil
		},
		func(c *tls.Certificate) []any {
			return append([]any{"cert", certFile, "key", keyFile}, certAttrs(*c)...)
		})
	if err != nil {
		return nil, err
	}
	started.Store(true)
	return &CertReloader{w: w}, nil
}

// Certificate returns the certificate in use.
func (r *CertReloader) Certificate() *tls.Certificate { return r.w.val.Load() }

// GetCertificate is a tls.Config.GetCertificate hook: it returns the
// current certificate, first reloading it if CheckInterval has passed since
// the last look and the files changed.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.w.current(), nil
}

// Reload loads the files now, whether or not they changed. On error the
// previous certificate stays in use.
func (r *CertReloader) Reload() error { return r.w.reload() }

// fileWatch holds a value loaded from files and loads it again, lazily from
// current, when CheckInterval has passed and the files changed. A failed
// load keeps the previous value and is logged.
type fileWatch[T any] struct {
	what     string // for the log: "tls certificate", "tls client CA"
	noun     string // what a failed reload keeps: "certificate", "CAs"
	files    []string
	load     func() (*T, error)
	attrs    func(*T) []any
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	val atomic.Pointer[T]

	mu        sync.Mutex // guards the fields below and serializes loads
	lastCheck time.Time
	stamp     []fileStamp // of files at the last load attempt
}

// fileStamp identifies a file's content: the SHA-256 of its first
// maxWatchedFileBytes. Neither the modification time nor the size would
// do: a renewal can rewrite a file with the same size within the file
// system's time granularity (or with a tool that restores it).
type fileStamp struct {
	sum [sha256.Size]byte
	ok  bool // the file could be read
}

// maxWatchedFileBytes bounds what a check reads of each file (PEM
// certificates and keys are a few KiB).
const maxWatchedFileBytes = 1 << 20

func newFileWatch[T any](opts CertReloaderOptions, what, noun string, files []string, load func() (*T, error), attrs func(*T) []any) (*fileWatch[T], error) {
	w := &fileWatch[T]{what: what, noun: noun, files: files, load: load, attrs: attrs,
		interval: opts.CheckInterval, now: opts.Now, log: orDiscard(opts.Log)}
	if w.interval == 0 {
		w.interval = DefaultCertCheckInterval
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastCheck = w.now()
	w.stamp = w.stat()
	v, err := load()
	if err != nil {
		return nil, err
	}
	w.val.Store(v)
	return w, nil
}

// current returns the value, first reloading it if the interval has passed
// since the last look and the files changed. A caller never waits for
// another's reload.
func (w *fileWatch[T]) current() *T {
	if w.interval > 0 && w.mu.TryLock() {
		now := w.now()
		if now.Sub(w.lastCheck) >= w.interval {
			w.lastCheck = now
			if !slices.Equal(w.stat(), w.stamp) {
				_ = w.reloadLocked()
			}
		}
		w.mu.Unlock()
	}
	return w.val.Load()
}

func (w *fileWatch[T]) reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastCheck = w.now()
	return w.reloadLocked()
}

func (w *fileWatch[T]) reloadLocked() error {
	w.stamp = w.stat()
	v, err := w.load()
	if err != nil {
		w.log.Error(w.what+" reload failed; keeping the previous "+w.noun, "err", err)
		return err
	}
	w.val.Store(v)
	w.log.Info(w.what+" reloaded", w.attrs(v)...)
	return nil
}

// stat returns the files' stamps (zero for a file that cannot be read).
func (w *fileWatch[T]) stat() []fileStamp {
	out := make([]fileStamp, len(w.files))
	for i, name := range w.files {
		out[i] = stampOf(name)
	}
	return out
}

func stampOf(name string) fileStamp {
	f, err := os.Open(name)
	if err != nil {
		return fileStamp{}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, maxWatchedFileBytes)); err != nil {
		return fileStamp{}
	}
	st := fileStamp{ok: true}
	h.Sum(st.sum[:0])
	return st
}

var errClientCANeeded = errors.New("tls: RequireClientCert needs ClientCAFile (the CAs that sign client certificates)")
