package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// MaxJWKSBytes bounds a JWKS document read from a file or over HTTP.
const MaxJWKSBytes = 1 << 20

// MaxKeySetKeys bounds the keys of a KeySet, hence of a JWKS document: a
// token whose kid is unknown or absent is tried against every key usable
// for its tenant, so a set of thousands of keys (a megabyte of JWKS holds
// some 8000) would make each forged token cost thousands of signature
// checks. A control plane publishes a tenant's current and previous keys.
const MaxKeySetKeys = 64

// Key is one Ed25519 verification key.
type Key struct {
	ID     string // kid
	Public ed25519.PublicKey
	// Tenant, when not empty, restricts the key to tokens presented for
	// that tenant. It is not part of the JWKS JSON (see KeySet.ForTenant).
	Tenant string
}

// KeyID derives the kid of a public key: the hex of the first 16 bytes of
// its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// KeySet is an immutable set of Ed25519 public keys by kid. Its JSON form is
// the reference's JWKS. The zero value and nil are empty sets.
type KeySet struct {
	keys []Key
	byID map[string]int
}

// NewKeySet returns a set of keys. A key without ID gets KeyID(Public). It
// fails on a key that is not 32 bytes long, on duplicate kids and on more
// than MaxKeySetKeys keys.
func NewKeySet(keys ...Key) (*KeySet, error) {
	if len(keys) > MaxKeySetKeys {
		return nil, errTooManyKeys(len(keys))
	}
	s := &KeySet{byID: make(map[string]int, len(keys))}
	for _, k := range keys {
		if len(k.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: key %q: public key is %d bytes, want %d", k.ID, len(k.Public), ed25519.PublicKeySize)
		}
		if k.ID == "" {
			k.ID = KeyID(k.Public)
		}
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("auth: duplicate kid %q", k.ID)
		}
		k.Public = append(ed25519.PublicKey(nil), k.Public...)
		s.byID[k.ID] = len(s.keys)
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Current returns s itself, so a fixed KeySet can serve as a Verifier's
// KeyProvider.
func (s *KeySet) Current() *KeySet { return s }

// Len is the number of keys.
func (s *KeySet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// Keys returns a copy of the keys, in insertion order.
func (s *KeySet) Keys() []Key {
	if s == nil {
		return nil
	}
	return append([]Key(nil), s.keys...)
}

// Lookup returns the key with kid.
func (s *KeySet) Lookup(kid string) (Key, bool) {
	if s == nil {
		return Key{}, false
	}
	i, ok := s.byID[kid]
	if !ok {
		return Key{}, false
	}
	return s.keys[i], true
}

// ForTenant returns a copy of s whose keys are all restricted to tenant.
func (s *KeySet) ForTenant(tenant string) *KeySet {
	keys := s.Keys()
	for i := range keys {
		keys[i].Tenant = tenant
	}
	out, _ := NewKeySet(keys...) // same kids and sizes as s: cannot fail
	return out
}

// errTooManyKeys is the error of a set of n keys, over MaxKeySetKeys.
func errTooManyKeys(n int) error {
	return fmt.Errorf("auth: %d keys in a key set, at most %d", n, MaxKeySetKeys)
}

// Merge returns the union of sets; a kid present in more than one set, or
// more than MaxKeySetKeys keys in all, is an error.
func Merge(sets ...*KeySet) (*KeySet, error) {
	var keys []Key
	for _, s := range sets {
		keys = append(keys, s.Keys()...)
	}
	return NewKeySet(keys...)
}

// jwk is one key of a JWKS document, fields in the reference's order.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

// MarshalJSON writes
// {"keys":[{"kty":"OKP","kid":…,"alg":"EdDSA","use":"sig","crv":"Ed25519","x":…}]}
// with x the base64url (no padding) public key. Tenants are not written.
func (s *KeySet) MarshalJSON() ([]byte, error) {
	doc := jwks{Keys: []jwk{}}
	for _, k := range s.Keys() {
		doc.Keys = append(doc.Keys, jwk{
			Kty: "OKP", Kid: k.ID, Alg: Algorithm, Use: "sig", Crv: "Ed25519",
			X: base64.RawURLEncoding.EncodeToString(k.Public),
		})
	}
	return json.Marshal(doc)
}

// ParseJWKS reads a JWKS document. Keys that are not Ed25519 signing keys
// (another kty or crv, or a use other than "sig") are skipped, so a mixed
// document works; an Ed25519 key with a missing kid, an alg other than
// EdDSA or a bad x is an error, as are duplicate kids and more than
// MaxKeySetKeys Ed25519 keys. Member names are matched exactly ("KTY" or
// "X" are unknown members, ignored), and a name given twice in one object
// is an error wrapping ErrDuplicateName.
func ParseJWKS(data []byte) (*KeySet, error) {
	var raw *[]json.RawMessage
	if err := DecodeFields(data, map[string]any{"keys": &raw}); err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	if raw == nil {
		return nil, errors.New(`auth: jwks: no "keys" array`)
	}
	var keys []Key
	for i, r := range *raw {
		k, err := decodeJWK(r)
		if err != nil {
			return nil, fmt.Errorf("auth: jwks: key %d: %w", i, err)
		}
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if len(keys) == MaxKeySetKeys { // checked before decoding more
			return nil, fmt.Errorf("auth: jwks: more than %d Ed25519 keys, at most %d", MaxKeySetKeys, MaxKeySetKeys)
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("auth: jwks: key %d: missing kid", i)
		}
		if k.Alg != "" && k.Alg != Algorithm {
			return nil, fmt.Errorf("auth: jwks: key %q: alg %q, want %s", k.Kid, k.Alg, Algorithm)
		}
		pub, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.X, "="))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: jwks: key %q: x is not a base64url 32-byte Ed25519 key", k.Kid)
		}
		keys = append(keys, Key{ID: k.Kid, Public: pub})
	}
	s, err := NewKeySet(keys...)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	return s, nil
}

// decodeJWK reads one key of a JWKS by its members' exact names.
func decodeJWK(data []byte) (jwk, error) {
	var k jwk
	err := DecodeFields(data, map[string]any{
		"kty": &k.Kty, "kid": &k.Kid, "alg": &k.Alg, "use": &k.Use, "crv": &k.Crv, "x": &k.X,
	})
	return k, err
}

// LoadJWKSFile reads a JWKS document from a file.
func LoadJWKSFile(path string) (*KeySet, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: read %s: %w", path, err)
	}
	if len(data) > MaxJWKSBytes {
		return nil, fmt.Errorf("auth: jwks: %s is larger than %d bytes", path, MaxJWKSBytes)
	}
	return data, nil
}

// FetchJWKS GETs a JWKS document from url with http.DefaultClient.
func FetchJWKS(ctx context.Context, url string) (*KeySet, error) {
	return fetchJWKS(ctx, http.DefaultClient, url)
}

func fetchJWKS(ctx context.Context, client *http.Client, url string) (*KeySet, error) {
	data, err := HTTPGet(ctx, client, url, MaxJWKSBytes)
	if err != nil {
		return nil, err
	}
	s, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return s, nil
}

// HTTPGet GETs url and returns its body, failing on a status other than 200
// or a body larger than limit bytes. A nil client is http.DefaultClient.
func HTTPGet(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: get %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: get %s: status %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("auth: get %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("auth: get %s: body larger than %d bytes", url, limit)
	}
	return data, nil
}
