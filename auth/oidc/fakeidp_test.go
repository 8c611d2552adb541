package oidc

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

// fakeIdP is an OpenID provider served over real HTTP on 127.0.0.1: a
// discovery document and a JWKS of its current keys.
type fakeIdP struct {
	srv        *httptest.Server
	mu         sync.Mutex
	keys       map[string]any // kid → *ecdsa.PrivateKey or *rsa.PrivateKey
	jwksFetch  atomic.Int32
	discFetch  atomic.Int32
	jwksBroken atomic.Bool
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{keys: map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		idp.discFetch.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.srv.URL, "jwks_uri": idp.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		idp.jwksFetch.Add(1)
		if idp.jwksBroken.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(idp.jwks())
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	idp.addEC(t, "ec-1", elliptic.P256())
	return idp
}

func (idp *fakeIdP) issuer() string { return idp.srv.URL }

func (idp *fakeIdP) addEC(t *testing.T, kid string, curve elliptic.Curve) {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp.mu.Lock()
	idp.keys[kid] = k
	idp.mu.Unlock()
}

func (idp *fakeIdP) addRSA(t *testing.T, kid string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp.mu.Lock()
	idp.keys[kid] = k
	idp.mu.Unlock()
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (idp *fakeIdP) jwks() []byte {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	var keys []map[string]string
	for kid, k := range idp.keys {
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			pt, _ := k.PublicKey.Bytes() // 0x04 || x || y
			size := (len(pt) - 1) / 2
			keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig",
				"crv": k.Curve.Params().Name, "x": enc(pt[1 : 1+size]), "y": enc(pt[1+size:])})
		case *rsa.PrivateKey:
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256",
				"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())})
		}
	}
	out, _ := json.Marshal(map[string]any{"keys": keys})
	return out
}

// token signs claims with the key kid; alg follows the key type unless
// given.
func (idp *fakeIdP) token(t *testing.T, kid string, claims jwt.MapClaims) string {
	t.Helper()
	idp.mu.Lock()
	key := idp.keys[kid]
	idp.mu.Unlock()
	var method jwt.SigningMethod = jwt.SigningMethodES256
	switch k := key.(type) {
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P384() {
			method = jwt.SigningMethodES384
		}
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims for the issuer at now.
func (idp *fakeIdP) claims(now time.Time, sub string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": idp.issuer(), "aud": "felix", "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func (idp *fakeIdP) config() IssuerConfig {
	return IssuerConfig{Issuer: idp.issuer(), Audiences: []string{"felix"}}
}
