package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/auth"
)

// Defaults of a Verifier.
const (
	DefaultCacheTTL           = time.Hour
	DefaultMinRefetchInterval = 10 * time.Second
	DefaultSkew               = 60 * time.Second
	DefaultSubjectClaim       = "sub"
	// DefaultMaxCachedDocuments bounds the JWKS, and separately the
	// discovery documents, a Verifier caches.
	DefaultMaxCachedDocuments = 1024
	// DefaultMaxTokenBytes bounds an upstream token's length (64 KiB:
	// ID tokens are a few KiB, more with a large groups claim).
	DefaultMaxTokenBytes = 64 << 10
	// DefaultMaxKeysPerJWKS bounds the keys kept of one JWKS (providers
	// publish a handful).
	DefaultMaxKeysPerJWKS = 64
	// maxDocBytes bounds a discovery or JWKS document.
	maxDocBytes = 1 << 20
)

// DefaultAllowedAlgs are the algorithms a Verifier accepts by default.
var DefaultAllowedAlgs = []string{"ES256"}

// supportedAlgs may appear in Verifier.AllowedAlgs.
var supportedAlgs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Errors of Verify. Every failure wraps one of them; texts never contain the
// token.
var (
	// ErrInvalidToken: the token does not parse, is not signed by a key of
	// its issuer, or fails a claim check.
	ErrInvalidToken = errors.New("invalid token")
	// ErrIssuerNotAllowed: the token's iss is not one of the configured
	// issuers.
	ErrIssuerNotAllowed = errors.New("issuer not allowed")
	// ErrNoIssuers: no issuer is configured.
	ErrNoIssuers = errors.New("no issuers configured")
	// ErrKeysUnavailable: the issuer's discovery document or JWKS could not
	// be fetched.
	ErrKeysUnavailable = errors.New("issuer keys unavailable")
	// ErrIssuerConfig: the IssuerConfig the token's iss selects is invalid
	// (see IssuerConfig.Validate); a configuration error, not the token's.
	ErrIssuerConfig = errors.New("invalid issuer configuration")
)

// IssuerConfig is an identity provider trusted by a tenant.
type IssuerConfig struct {
	// Issuer is the exact iss of its tokens.
	Issuer string `json:"issuer" yaml:"issuer"`
	// Audiences: a token's aud must contain one of them (at least one
	// must be configured).
	Audiences []string `json:"audiences" yaml:"audiences"`
	// JWKSURL is where its keys are; empty means discovery.
	JWKSURL string `json:"jwks_url,omitempty" yaml:"jwks_url"`
	// DiscoveryURL is its OpenID configuration; empty means
	// Issuer + "/.well-known/openid-configuration".
	DiscoveryURL string `json:"discovery_url,omitempty" yaml:"discovery_url"`
	// SubjectClaim names the claim holding the subject. Default "sub".
	SubjectClaim string `json:"subject_claim,omitempty" yaml:"subject_claim"`
	// GroupsClaim, when set, names a claim holding the principal's groups
	// (an array of strings or one string).
	GroupsClaim string `json:"groups_claim,omitempty" yaml:"groups_claim"`
}

// Validate checks what Verify needs of c: an Issuer, not blank, without
// '|' (the principal id joins issuer and subject with '|', so an issuer
// holding one could share ids with another issuer's principals) and at
// least one audience, none of them empty or blank (with an empty one, a
// token whose aud is "" would pass). Errors wrap ErrIssuerConfig. Loaders
// of issuer configurations should call it; Verify refuses a token whose
// issuer's config fails it.
func (c IssuerConfig) Validate() error {
	switch {
	case strings.TrimSpace(c.Issuer) == "":
		return fmt.Errorf("oidc: %w: empty issuer", ErrIssuerConfig)
	case strings.Contains(c.Issuer, "|"):
		return fmt.Errorf("oidc: %w: issuer %q contains '|', which would make principal ids ambiguous", ErrIssuerConfig, c.Issuer)
	case len(c.Audiences) == 0:
		return fmt.Errorf("oidc: %w: issuer %q has no audiences", ErrIssuerConfig, c.Issuer)
	}
	for i, a := range c.Audiences {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("oidc: %w: issuer %q: audience %d is empty", ErrIssuerConfig, c.Issuer, i)
		}
	}
	return nil
}

// Principal is a verified upstream identity.
type Principal struct {
	// ID is hex(sha256(issuer + "|" + subject)): stable and the same as the
	// reference's principal_id. It is unambiguous because an issuer may
	// not contain '|' (IssuerConfig.Validate): the first '|' ends it.
	ID      string
	Issuer  string
	Subject string
	Groups  []string
	// ExpiresAt is the upstream token's exp: a token exchanged for it
	// lives no longer.
	ExpiresAt time.Time
}

// PrincipalID returns hex(sha256(issuer + "|" + subject)). The issuer must
// not contain '|' (Verify refuses such an issuer, see
// IssuerConfig.Validate); the subject may.
func PrincipalID(issuer, subject string) string {
	sum := sha256.Sum256([]byte(issuer + "|" + subject))
	return hex.EncodeToString(sum[:])
}

// Verifier verifies upstream ID tokens. The zero value is ready to use and
// safe for concurrent use; configure it before the first Verify.
type Verifier struct {
	// AllowedAlgs are the accepted JWT algorithms. Default ["ES256"];
	// others: ES384, ES512, RS256/384/512, PS256/384/512.
	AllowedAlgs []string
	// HTTPClient fetches discovery documents and JWKS. Default
	// http.DefaultClient.
	HTTPClient *http.Client
	// CacheTTL is how long fetched keys and discovery documents are used.
	// Default 1 h.
	CacheTTL time.Duration
	// MinRefetchInterval is the least time between two fetches of one
	// JWKS caused by unknown kids. Default 10 s.
	MinRefetchInterval time.Duration
	// Skew is the clock skew allowed on exp, nbf and iat. Default 60 s.
	Skew time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxCachedDocuments bounds the JWKS URLs whose keys (or last
	// failure) are cached, and separately the discovery documents: a
	// provider whose discovery names a new jwks_uri at each refresh, or
	// issuers that come and go in a store, must not grow the caches
	// without end. When a new one would pass the bound, the least
	// recently used is dropped (Stats().Evictions) and fetched again when
	// next needed. Zero or negative means DefaultMaxCachedDocuments
	// (1024).
	MaxCachedDocuments int
	// MaxKeysPerJWKS bounds the keys kept of one fetched JWKS (a document
	// may be up to 1 MiB, thousands of keys): the first ones usable, in
	// document order; the rest are dropped (Stats().KeysDropped). Zero or
	// negative means DefaultMaxKeysPerJWKS (64).
	MaxKeysPerJWKS int
	// MaxTokenBytes bounds a token's length, checked before it is parsed
	// (twice: unverified for its iss, then verified): a longer one is
	// ErrInvalidToken "too large". An HTTP header may hold a megabyte.
	// Zero or negative means DefaultMaxTokenBytes (64 KiB).
	MaxTokenBytes int

	mu          sync.Mutex // guards the maps and counters; never held while fetching
	jwks        map[string]*cachedKeys
	disc        map[discKey]cachedURL
	fetch       map[string]*fetchSlot // per document URL, while a fetch of it is asked for
	uses        uint64                // stamps cache uses, for least-recently-used eviction
	evictions   uint64
	keysDropped uint64
}

// fetchSlot is a one-slot semaphore held while fetching one URL; refs
// counts the holder and the waiters, and the slot leaves the map when
// none is left.
type fetchSlot struct {
	ch   chan struct{}
	refs int
}

// VerifierStats describes a Verifier's caches.
type VerifierStats struct {
	// CachedJWKS and CachedDiscovery are the documents cached now (at most
	// MaxCachedDocuments each).
	CachedJWKS      int
	CachedDiscovery int
	// Evictions counts the cached documents dropped to stay within
	// MaxCachedDocuments.
	Evictions uint64
	// KeysDropped counts the keys of fetched JWKS dropped beyond
	// MaxKeysPerJWKS.
	KeysDropped uint64
}

// Stats returns the state of the caches.
func (v *Verifier) Stats() VerifierStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return VerifierStats{CachedJWKS: len(v.jwks), CachedDiscovery: len(v.disc), Evictions: v.evictions, KeysDropped: v.keysDropped}
}

// use returns a new stamp for a cache entry used now; v.mu is held.
func (v *Verifier) use() uint64 {
	v.uses++
	return v.uses
}

// makeRoom drops the least recently used entries of m until one more fits
// within MaxCachedDocuments; v.mu is held. It scans m, which happens only
// when a document not cached is stored, after a fetch.
func makeRoom[K comparable, E any](v *Verifier, m map[K]E, used func(E) uint64) {
	limit := v.MaxCachedDocuments
	if limit <= 0 {
		limit = DefaultMaxCachedDocuments
	}
	for len(m) >= limit {
		var oldest K
		var stamp uint64
		first := true
		for u, e := range m {
			if s := used(e); first || s < stamp {
				oldest, stamp, first = u, s, false
			}
		}
		delete(m, oldest)
		v.evictions++
	}
}

// putKeys stores c as url's entry; v.mu is held.
func (v *Verifier) putKeys(url string, c *cachedKeys) {
	if v.jwks == nil {
		v.jwks = make(map[string]*cachedKeys)
	}
	if _, ok := v.jwks[url]; !ok {
		makeRoom(v, v.jwks, func(c *cachedKeys) uint64 { return c.used })
	}
	c.used = v.use()
	v.jwks[url] = c
}

// putURL stores c as k's entry; v.mu is held.
func (v *Verifier) putURL(k discKey, c cachedURL) {
	if v.disc == nil {
		v.disc = make(map[discKey]cachedURL)
	}
	if _, ok := v.disc[k]; !ok {
		makeRoom(v, v.disc, func(c cachedURL) uint64 { return c.used })
	}
	c.used = v.use()
	v.disc[k] = c
}

// discKey names a discovery cache entry: a discovery URL as read for one
// configured issuer. The document's issuer must equal the configured one
// (OpenID Connect Discovery 1.0 §4.3), and that check is made when the
// document is fetched; keying by the URL alone would let a second issuer
// configuration naming the same URL use the JWKS URL found for the first
// one unchecked (and share its failures).
type discKey struct {
	url, issuer string
}

// cachedKeys is what is known of one JWKS URL: the keys of its last
// successful fetch, or none (fetched zero) while every fetch has failed.
type cachedKeys struct {
	keys    map[string]upstreamKey
	fetched time.Time // of the keys; zero if no fetch succeeded yet
	failed  time.Time // of the last failed fetch after fetched, or zero
	err     error     // of that failed fetch, answered while no keys are known
	used    uint64    // stamp of the last use (Verifier.use)
}

// cachedURL is what discovery found at one discovery URL for one configured
// issuer (discKey): the JWKS URL of
// its last successful fetch, or "" (fetched zero) while every fetch has
// failed.
type cachedURL struct {
	url     string
	fetched time.Time
	failed  time.Time // of the last failed fetch after fetched, or zero
	err     error     // of that failed fetch, answered while url is ""
	used    uint64    // stamp of the last use (Verifier.use)
}

// lastTry is when the document was last asked for, with or without success.
func lastTry(fetched, failed time.Time) time.Time {
	if failed.After(fetched) {
		return failed
	}
	return fetched
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Verify checks token against issuers and returns its principal. Errors
// wrap ErrNoIssuers, ErrIssuerNotAllowed, ErrIssuerConfig (the issuer the
// token names is configured wrongly), ErrKeysUnavailable or
// ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, token string, issuers []IssuerConfig) (*Principal, error) {
	if len(issuers) == 0 {
		return nil, ErrNoIssuers
	}
	algs := v.AllowedAlgs
	if len(algs) == 0 {
		algs = DefaultAllowedAlgs
	}
	limit := v.MaxTokenBytes
	if limit <= 0 {
		limit = DefaultMaxTokenBytes
	}
	if len(token) > limit {
		return nil, invalid(fmt.Sprintf("too large: %d bytes, limit %d", len(token), limit))
	}
	if auth.CheckJWTHeader(token) != nil {
		return nil, invalid("malformed")
	}
	var unverified idClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &unverified); err != nil {
		return nil, invalid("malformed")
	}
	iss, _ := unverified.MapClaims["iss"].(string)
	i := slices.IndexFunc(issuers, func(c IssuerConfig) bool { return c.Issuer == iss })
	if iss == "" || i < 0 {
		return nil, ErrIssuerNotAllowed
	}
	cfg := issuers[i]
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	var keyErr error
	keyfunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		alg := t.Method.Alg()
		if !slices.Contains(supportedAlgs, alg) {
			return nil, errors.New("unsupported alg")
		}
		k, err := v.key(ctx, cfg, kid)
		if err != nil {
			keyErr = err
			return nil, err
		}
		if !k.fits(alg) {
			return nil, errors.New("key does not fit alg")
		}
		return k.pub, nil
	}
	var claims idClaims
	parser := jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(token, &claims, keyfunc); err != nil {
		if keyErr != nil && errors.Is(keyErr, ErrKeysUnavailable) {
			return nil, keyErr
		}
		return nil, invalid("signature or key")
	}
	if err := v.checkClaims(claims.MapClaims, cfg); err != nil {
		return nil, err
	}
	subClaim := cfg.SubjectClaim
	if subClaim == "" {
		subClaim = DefaultSubjectClaim
	}
	sub, _ := claims.MapClaims[subClaim].(string)
	if sub == "" {
		return nil, invalid("no subject claim " + subClaim)
	}
	p := &Principal{ID: PrincipalID(cfg.Issuer, sub), Issuer: cfg.Issuer, Subject: sub}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.ExpiresAt = exp.Time
	}
	if cfg.GroupsClaim != "" {
		p.Groups = groups(claims.MapClaims[cfg.GroupsClaim])
	}
	return p, nil
}

// idClaims are an ID token's claims, by their exact names (a map), with
// no name given twice: jwt.MapClaims alone keeps the last of duplicated
// claims, where another verifier might keep the first.
type idClaims struct{ jwt.MapClaims }

// UnmarshalJSON refuses a name given twice anywhere in the claims
// (auth.CheckUniqueNames), then decodes them as jwt.MapClaims.
func (c *idClaims) UnmarshalJSON(b []byte) error {
	if err := auth.CheckUniqueNames(b); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.MapClaims)
}

func invalid(detail string) error { return fmt.Errorf("oidc: %w: %s", ErrInvalidToken, detail) }

func (v *Verifier) checkClaims(c jwt.MapClaims, cfg IssuerConfig) error {
	now := v.now()
	skew := orDefault(v.Skew, DefaultSkew)
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return invalid("missing or bad exp")
	}
	if !now.Before(exp.Add(skew)) {
		return invalid("expired")
	}
	if nbf, err := c.GetNotBefore(); err != nil || (nbf != nil && now.Add(skew).Before(nbf.Time)) {
		return invalid("not yet valid")
	}
	if iat, err := c.GetIssuedAt(); err != nil || (iat != nil && now.Add(skew).Before(iat.Time)) {
		return invalid("issued in the future")
	}
	if iss, _ := c.GetIssuer(); iss != cfg.Issuer {
		return invalid("issuer")
	}
	aud, err := c.GetAudience()
	if err != nil || !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(cfg.Audiences, a) }) {
		return invalid("audience")
	}
	return nil
}

// groups reads a groups claim: an array of strings or one string.
func groups(v any) []string {
	switch g := v.(type) {
	case string:
		if g != "" {
			return []string{g}
		}
	case []any:
		var out []string
		for _, e := range g {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// key returns the key kid of cfg's JWKS, fetching the JWKS when it is not
// cached, stale, or lacks kid (then at most every MinRefetchInterval).
// Fetches of one URL are serialized, and no lock is held across a fetch
// that another Verify needs: a token whose key is cached never waits for a
// fetch, so a slow or hanging endpoint of one issuer (one tenant's
// identity provider) stalls only the tokens that need that fetch.
//
// A fetch that fails (unreachable, an error status, a document that does
// not parse or holds no usable key) keeps the cached keys: stale keys stay
// in use until a fetch succeeds, and the endpoint is asked again at most
// every MinRefetchInterval meanwhile. Only a successful fetch replaces the
// keys, so a key the provider removed goes with the first one. A failure
// with no keys cached (the provider down since the start) is remembered
// too: until MinRefetchInterval has passed it is the answer, without a
// fetch, so tokens naming the issuer (anyone can send them) cannot make
// every exchange fetch, nor queue behind one another's fetches.
func (v *Verifier) key(ctx context.Context, cfg IssuerConfig, kid string) (upstreamKey, error) {
	url, err := v.jwksURL(ctx, cfg)
	if err != nil {
		return upstreamKey{}, err
	}
	if k, done, err := v.cachedKey(url, kid); done {
		return k, err
	}
	unlock, err := v.lockFetch(ctx, url)
	if err != nil {
		return upstreamKey{}, err
	}
	defer unlock()
	// Another Verify may have fetched it while this one waited.
	if k, done, err := v.cachedKey(url, kid); done {
		return k, err
	}
	keys, err := v.fetchKeys(ctx, url)
	v.mu.Lock()
	c := v.jwks[url]
	if err != nil {
		// Remember the failure (see cachedKey), also with no keys yet,
		// unless the request gave up (its context ended): that says
		// nothing of the endpoint, and must not refuse other requests.
		if c == nil && ctx.Err() == nil {
			c = &cachedKeys{}
			v.putKeys(url, c)
		}
		var stale upstreamKey
		ok := false
		if c != nil {
			if ctx.Err() == nil {
				c.failed, c.err = v.now(), err
			}
			stale, ok = c.keys[kid]
		}
		v.mu.Unlock()
		if ok {
			return stale, nil // the endpoint fails: the keys it served last stay in use
		}
		return upstreamKey{}, err
	}
	v.putKeys(url, &cachedKeys{keys: keys, fetched: v.now()})
	v.mu.Unlock()
	k, ok := keys[kid]
	if !ok {
		return upstreamKey{}, errors.New("unknown kid")
	}
	return k, nil
}

// fetchKeys GETs and parses a JWKS; one without a usable key is an error.
func (v *Verifier) fetchKeys(ctx context.Context, url string) (map[string]upstreamKey, error) {
	data, err := auth.HTTPGet(ctx, v.HTTPClient, url, maxDocBytes)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w: %w", ErrKeysUnavailable, err)
	}
	limit := v.MaxKeysPerJWKS
	if limit <= 0 {
		limit = DefaultMaxKeysPerJWKS
	}
	keys, dropped, err := parseJWKS(data, limit)
	if dropped > 0 {
		v.mu.Lock()
		v.keysDropped += uint64(dropped)
		v.mu.Unlock()
	}
	if err == nil && len(keys) == 0 {
		err = errors.New("jwks: no usable signing key")
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: %w: %s: %w", ErrKeysUnavailable, url, err)
	}
	return keys, nil
}

// cachedKey answers from url's cached keys when it can; done is false when
// they must be fetched (none, stale, or an unknown kid after
// MinRefetchInterval). Stale keys answer while the last fetch failed less
// than MinRefetchInterval ago; with no keys, that failure's error answers.
func (v *Verifier) cachedKey(url, kid string) (k upstreamKey, done bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	c := v.jwks[url]
	if c == nil {
		return upstreamKey{}, false, nil
	}
	c.used = v.use()
	recent := now.Sub(lastTry(c.fetched, c.failed)) < orDefault(v.MinRefetchInterval, DefaultMinRefetchInterval)
	if c.fetched.IsZero() { // every fetch failed so far
		if recent {
			return upstreamKey{}, true, c.err
		}
		return upstreamKey{}, false, nil
	}
	if now.Sub(c.fetched) >= orDefault(v.CacheTTL, DefaultCacheTTL) && !(recent && c.failed.After(c.fetched)) {
		return upstreamKey{}, false, nil // stale, and no failed fetch just now
	}
	if k, ok := c.keys[kid]; ok {
		return k, true, nil
	}
	if recent {
		return upstreamKey{}, true, errors.New("unknown kid")
	}
	return upstreamKey{}, false, nil
}

// lockFetch takes url's fetch slot, waiting at most until ctx ends.
func (v *Verifier) lockFetch(ctx context.Context, url string) (unlock func(), err error) {
	v.mu.Lock()
	if v.fetch == nil {
		v.fetch = make(map[string]*fetchSlot)
	}
	slot := v.fetch[url]
	if slot == nil {
		slot = &fetchSlot{ch: make(chan struct{}, 1)}
		v.fetch[url] = slot
	}
	slot.refs++
	v.mu.Unlock()
	release := func() {
		v.mu.Lock()
		if slot.refs--; slot.refs == 0 {
			delete(v.fetch, url)
		}
		v.mu.Unlock()
	}
	select {
	case slot.ch <- struct{}{}:
		return func() { <-slot.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("oidc: %w: waiting for %s: %w", ErrKeysUnavailable, url, ctx.Err())
	}
}

// jwksURL returns cfg's JWKS URL, from discovery when not configured.
func (v *Verifier) jwksURL(ctx context.Context, cfg IssuerConfig) (string, error) {
	if cfg.JWKSURL != "" {
		return cfg.JWKSURL, nil
	}
	discURL := cfg.DiscoveryURL
	if discURL == "" {
		discURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
	}
	k := discKey{url: discURL, issuer: cfg.Issuer}
	if u, ok, err := v.cachedDiscovery(k); ok {
		return u, err
	}
	unlock, err := v.lockFetch(ctx, discURL)
	if err != nil {
		return "", err
	}
	defer unlock()
	if u, ok, err := v.cachedDiscovery(k); ok {
		return u, err
	}
	u, err := v.discover(ctx, cfg, discURL)
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.disc[k]
	if err != nil {
		// The document served last stays in use while this fails; with
		// none, the failure answers until the next try (cachedDiscovery).
		if ctx.Err() == nil { // not a request that gave up (see key)
			c.failed, c.err = v.now(), err
			v.putURL(k, c)
		}
		if c.url != "" {
			return c.url, nil
		}
		return "", err
	}
	v.putURL(k, cachedURL{url: u, fetched: v.now()})
	return u, nil
}

// discover fetches cfg's discovery document and returns its jwks_uri.
func (v *Verifier) discover(ctx context.Context, cfg IssuerConfig, discURL string) (string, error) {
	data, err := auth.HTTPGet(ctx, v.HTTPClient, discURL, maxDocBytes)
	if err != nil {
		return "", fmt.Errorf("oidc: %w: %w", ErrKeysUnavailable, err)
	}
	var issuer, jwksURI string // by their exact names; a name twice is refused
	if err := auth.DecodeFields(data, map[string]any{"issuer": &issuer, "jwks_uri": &jwksURI}); err != nil {
		return "", fmt.Errorf("oidc: %w: %s: %w", ErrKeysUnavailable, discURL, err)
	}
	if jwksURI == "" {
		return "", fmt.Errorf("oidc: %w: %s has no jwks_uri", ErrKeysUnavailable, discURL)
	}
	if issuer != "" && issuer != cfg.Issuer {
		return "", fmt.Errorf("oidc: %w: %s names issuer %q", ErrKeysUnavailable, discURL, issuer)
	}
	return jwksURI, nil
}

// cachedDiscovery answers from what discovery found for k when it can:
// the JWKS URL when cached and fresh (or stale while the last fetch
// failed less than MinRefetchInterval ago), or, when no fetch has
// succeeded yet, the last failure's error for MinRefetchInterval. ok is
// false when the document must be fetched.
func (v *Verifier) cachedDiscovery(k discKey) (url string, ok bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.disc[k]
	if !ok {
		return "", false, nil
	}
	c.used = v.use()
	v.disc[k] = c
	now := v.now()
	failing := c.failed.After(c.fetched) && now.Sub(c.failed) < orDefault(v.MinRefetchInterval, DefaultMinRefetchInterval)
	if c.url == "" { // every fetch failed so far
		if failing {
			return "", true, c.err
		}
		return "", false, nil
	}
	if now.Sub(c.fetched) >= orDefault(v.CacheTTL, DefaultCacheTTL) && !failing {
		return "", false, nil
	}
	return c.url, true, nil
}
