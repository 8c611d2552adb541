// Package oidctest is a fake OpenID provider for tests: a discovery
// document and a JWKS of its current signing keys, served over real HTTP on
// 127.0.0.1, and ID tokens signed with those keys.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// DefaultKID names the P-256 key every new Provider starts with.
	DefaultKID = "ec-1"
	// Audience is the aud of the claims Claims returns.
	Audience = "felix"
	// JWKSPath is where the provider serves its JWKS; the discovery
	// document at /.well-known/openid-configuration points there.
	JWKSPath = "/keys"
)

// Provider is safe for concurrent use. The issuer is the server's URL.
type Provider struct {
	srv        *httptest.Server
	mu         sync.Mutex
	keys       map[string]any // kid → *ecdsa.PrivateKey or *rsa.PrivateKey
	jwksFetch  atomic.Int32
	discFetch  atomic.Int32
	jwksBroken atomic.Bool
}

// New starts a provider with one P-256 key, DefaultKID; t's cleanup stops
// it.
func New(t testing.TB) *Provider {
	t.Helper()
	p := &Provider{keys: map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		p.discFetch.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.Issuer(), "jwks_uri": p.JWKSURL()})
	})
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		p.jwksFetch.Add(1)
		if p.jwksBroken.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(p.JWKS())
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.AddEC(t, DefaultKID, elliptic.P256())
	return p
}

// Issuer returns the provider's issuer URL (http://127.0.0.1:port).
func (p *Provider) Issuer() string { return p.srv.URL }

// JWKSURL returns the URL of the provider's JWKS.
func (p *Provider) JWKSURL() string { return p.srv.URL + JWKSPath }

// AddEC adds an ECDSA key on curve as kid, replacing any key of that kid.
func (p *Provider) AddEC(t testing.TB, kid string, curve elliptic.Curve) {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.setKey(kid, k)
}

// AddRSA adds a 2048-bit RSA key as kid, replacing any key of that kid.
func (p *Provider) AddRSA(t testing.TB, kid string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.setKey(kid, k)
}

func (p *Provider) setKey(kid string, k any) {
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

// RemoveKey drops kid from the JWKS; tokens it signed no longer verify.
func (p *Provider) RemoveKey(kid string) {
	p.mu.Lock()
	delete(p.keys, kid)
	p.mu.Unlock()
}

// Key returns the private key of kid (*ecdsa.PrivateKey or
// *rsa.PrivateKey), nil if there is none, for tokens Token does not make.
func (p *Provider) Key(kid string) any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[kid]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWKS returns the JSON Web Key Set the provider serves: every key's public
// half, with use "sig"; RSA keys carry alg RS256, EC keys no alg.
func (p *Provider) JWKS() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := []map[string]string{}
	for kid, k := range p.keys {
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			pt, _ := k.PublicKey.Bytes() // 0x04 || x || y
			size := (len(pt) - 1) / 2
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig",
				"crv": k.Curve.Params().Name, "x": b64(pt[1 : 1+size]), "y": b64(pt[1+size:])})
		case *rsa.PrivateKey:
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		}
	}
	out, _ := json.Marshal(map[string]any{"keys": keys})
	return out
}

// Token signs claims with the key kid, which names it in the header. The
// alg follows the key: RS256 for RSA, ES384 for P-384, ES256 otherwise.
func (p *Provider) Token(t testing.TB, kid string, claims jwt.MapClaims) string {
	t.Helper()
	key := p.Key(kid)
	var method jwt.SigningMethod
	switch k := key.(type) {
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		method = jwt.SigningMethodES256
		if k.Curve == elliptic.P384() {
			method = jwt.SigningMethodES384
		}
	default:
		t.Fatalf("oidctest: no key %q", kid)
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims returns claims valid at now: this issuer, aud Audience, sub,
// iat now and exp an hour later.
func (p *Provider) Claims(now time.Time, sub string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": p.Issuer(), "aud": Audience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// JWKSFetches returns how many times the JWKS was requested, broken or not.
func (p *Provider) JWKSFetches() int { return int(p.jwksFetch.Load()) }

// DiscoveryFetches returns how many times the discovery document was
// requested.
func (p *Provider) DiscoveryFetches() int { return int(p.discFetch.Load()) }

// SetJWKSBroken makes the JWKS endpoint answer 502 Bad Gateway (true) or
// serve the keys again (false).
func (p *Provider) SetJWKSBroken(broken bool) { p.jwksBroken.Store(broken) }
