package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often a KeySource checks its file or URL.
const DefaultReloadInterval = time.Minute

// KeySourceOptions configure a KeySource. Exactly one of File and URL must
// be set.
type KeySourceOptions struct {
	// File is a JWKS file, read at every reload (at most MaxJWKSBytes)
	// and loaded again when its content changed: the SHA-256 of what was
	// read decides, not the modification time or size, which a same-size
	// rewrite within the file system's time granularity keeps.
	File string
	// URL is a JWKS URL, fetched again at every interval.
	URL string
	// Tenant, when not empty, restricts every loaded key to that tenant
	// (see KeySet.ForTenant).
	Tenant string
	// Interval is the period of Run. Default DefaultReloadInterval (1 min).
	Interval time.Duration
	// Ticks, when not nil, replaces Run's ticker: every value received
	// triggers one reload (tests drive it by hand).
	Ticks <-chan time.Time
	// HTTPClient fetches URL. Default http.DefaultClient.
	HTTPClient *http.Client
	// Log receives reload results. Default slog.Default().
	Log *slog.Logger
}

// KeySource holds the current key set of a JWKS file or URL; it is a
// KeyProvider for Verifier and safe for concurrent use.
type KeySource struct {
	opts    KeySourceOptions
	log     *slog.Logger
	current atomic.Pointer[KeySet]

	mu     sync.Mutex        // serializes reloads
	digest [sha256.Size]byte // of File's content at the last successful load
	loaded bool              // digest is set
}

// NewKeySource loads the keys once; an error or an empty key set fails.
func NewKeySource(ctx context.Context, opts KeySourceOptions) (*KeySource, error) {
	if (opts.File == "") == (opts.URL == "") {
		return nil, errors.New("auth: key source needs exactly one of a JWKS file and a JWKS URL")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultReloadInterval
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	s := &KeySource{opts: opts, log: opts.Log}
	if s.log == nil {
		s.log = slog.Default()
	}
	if _, err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Current returns the keys in use.
func (s *KeySource) Current() *KeySet { return s.current.Load() }

// Reload loads the keys now (a file only when it changed since it was
// last loaded; after a failed load, at every Reload until one succeeds)
// and reports whether the key set was replaced. On error the previous keys
// stay in use and the error is logged and returned.
func (s *KeySource) Reload(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, err := s.load(ctx)
	if err == nil && ks == nil {
		return false, nil // file unchanged
	}
	if err == nil && ks.Len() == 0 {
		err = errors.New("auth: jwks holds no Ed25519 keys")
	}
	if err != nil {
		if s.current.Load() != nil {
			s.log.Warn("jwks reload failed; keeping the previous keys", "source", s.name(), "err", err)
		}
		return false, err
	}
	if s.opts.Tenant != "" {
		ks = ks.ForTenant(s.opts.Tenant)
	}
	s.current.Store(ks)
	s.log.Info("jwks loaded", "source", s.name(), "keys", ks.Len())
	return true, nil
}

// load returns the new key set, or nil without error when the file did not
// change.
func (s *KeySource) load(ctx context.Context) (*KeySet, error) {
	if s.opts.URL != "" {
		return fetchJWKS(ctx, s.opts.HTTPClient, s.opts.URL)
	}
	// The content decides: a rewrite may keep the size and, within the
	// file system's time granularity (or with a tool that restores it),
	// the modification time. Reading and hashing at most MaxJWKSBytes
	// once per interval is cheap.
	data, err := readLimited(s.opts.File)
	if err != nil {
		s.loaded = false
		return nil, err
	}
	sum := sha256.Sum256(data)
	if s.loaded && s.current.Load() != nil && sum == s.digest {
		return nil, nil
	}
	// Remembered only once loaded: a file that failed (unreadable,
	// half-written) is tried again at the next reload.
	s.loaded = false
	ks, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.opts.File, err)
	}
	if ks.Len() > 0 {
		s.digest, s.loaded = sum, true
	}
	return ks, nil
}

func (s *KeySource) name() string {
	if s.opts.URL != "" {
		return s.opts.URL
	}
	return s.opts.File
}

// Run reloads at every interval (or Ticks value) until ctx ends, and
// returns ctx.Err().
func (s *KeySource) Run(ctx context.Context) error {
	ticks := s.opts.Ticks
	if ticks == nil {
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
			_, _ = s.Reload(ctx) // failures are logged and keep the old keys
		}
	}
}
