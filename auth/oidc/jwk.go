package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/felixmq/felix/auth"
)

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// MaxRSABits is the largest RSA modulus accepted (as crypto/tls's default
// bound): a signature check costs more than the square of the modulus
// size (4 ms at 8192 bits, 3.7 s at 262144), so a provider's JWKS with a
// modulus of megabits would make every token naming it cost minutes of
// CPU.
const MaxRSABits = 8192

// jwk is one key of an upstream JWKS (EC or RSA).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// upstreamKey is a parsed verification key.
type upstreamKey struct {
	alg string // the JWK's alg, "" if unset
	pub any    // *ecdsa.PublicKey or *rsa.PublicKey
}

// parseJWKS returns the usable signing keys by kid, at most limit of them
// (the first in document order; dropped counts the keys with a kid and a
// signing use left out, unparsed);
// keys without kid, of other types, for encryption, or malformed are
// skipped. Member names are matched exactly, and a name given twice in
// one object fails the whole document (auth.ErrDuplicateName).
func parseJWKS(data []byte, limit int) (keys map[string]upstreamKey, dropped int, err error) {
	var raw []json.RawMessage
	if err := auth.DecodeFields(data, map[string]any{"keys": &raw}); err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	keys = make(map[string]upstreamKey, min(len(raw), limit))
	for i, r := range raw {
		k, err := decodeJWK(r)
		if err != nil {
			return nil, 0, fmt.Errorf("jwks: key %d: %w", i, err)
		}
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if _, dup := keys[k.Kid]; !dup && len(keys) >= limit {
			dropped++ // not parsed: its key is never used
			continue
		}
		pub, err := k.publicKey()
		if err != nil {
			continue
		}
		keys[k.Kid] = upstreamKey{alg: k.Alg, pub: pub}
	}
	return keys, dropped, nil
}

// decodeJWK reads one key of a JWKS by its members' exact names: "KID"
// or "X" are unknown members, ignored.
func decodeJWK(data []byte) (jwk, error) {
	var k jwk
	err := auth.DecodeFields(data, map[string]any{
		"kty": &k.Kty, "kid": &k.Kid, "alg": &k.Alg, "use": &k.Use, "crv": &k.Crv,
		"x": &k.X, "y": &k.Y, "n": &k.N, "e": &k.E,
	})
	return k, err
}

func (k jwk) publicKey() (any, error) {
	switch k.Kty {
	case "EC":
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[k.Crv]
		if curve == nil {
			return nil, fmt.Errorf("curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		point := append(append([]byte{4}, x...), y...)
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case "RSA":
		n, errN := b64(k.N)
		e, errE := b64(k.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < MinRSABits || pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("weak RSA key")
		}
		if pub.N.BitLen() > MaxRSABits {
			return nil, fmt.Errorf("RSA modulus of %d bits, at most %d", pub.N.BitLen(), MaxRSABits)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("kty %q", k.Kty)
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// fits reports whether key may verify a token signed with alg.
func (k upstreamKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		want := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		return want != "" && pub.Curve.Params().Name == want
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	}
	return false
}
