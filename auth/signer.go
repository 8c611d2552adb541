package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer issues Felix tokens with one Ed25519 private key.
type Signer struct {
	key ed25519.PrivateKey
	kid string
	// TTL is the lifetime of issued tokens whose ExpiresAt is zero.
	// Default DefaultTTL (900 s).
	TTL time.Duration
	// Now is the clock for IssuedAt. Default time.Now.
	Now func() time.Time
}

// NewSigner returns a signer for key. An empty kid means KeyID of the public
// key.
func NewSigner(key ed25519.PrivateKey, kid string) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("auth: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	pub := key.Public().(ed25519.PublicKey)
	if kid == "" {
		kid = KeyID(pub)
	}
	return &Signer{key: key, kid: kid}, nil
}

// GenerateKey returns a signer with a new random key.
func GenerateKey() (*Signer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate key: %w", err)
	}
	return NewSigner(key, "")
}

// KeyID is the kid written in the header of issued tokens.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey returns the verification key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeySet returns a set holding the signer's public key.
func (s *Signer) KeySet() *KeySet {
	ks, _ := NewKeySet(Key{ID: s.kid, Public: s.PublicKey()}) // valid by construction
	return ks
}

// PublicJWKS returns the JWKS document of the signer's public key.
func (s *Signer) PublicJWKS() ([]byte, error) { return json.Marshal(s.KeySet()) }

// MarshalPEM returns the private key as a PKCS#8 "PRIVATE KEY" PEM block.
func (s *Signer) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SavePEM writes the private key to a new file at path with mode 0600. It
// never overwrites: an existing file is an error (remove it first to
// replace a key on purpose).
func (s *Signer) SavePEM(path string) error {
	data, err := s.MarshalPEM()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("auth: save key: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("auth: save key %s: %w", path, err)
	}
	return nil
}

// ParseSignerPEM reads a PKCS#8 PEM Ed25519 private key; the kid is derived
// from the public key.
func ParseSignerPEM(data []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("auth: no PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("auth: PEM block is %q, want PRIVATE KEY (PKCS#8)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse PKCS#8 key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: key is %T, want Ed25519", k)
	}
	return NewSigner(key, "")
}

// LoadSignerPEM reads a signer's key from a PEM file.
func LoadSignerPEM(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	s, err := ParseSignerPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Issue signs a token for c. Zero fields take defaults: Issuer
// DefaultIssuer, Audience DefaultAudience, IssuedAt now, ExpiresAt
// IssuedAt+TTL. Tenant is required and every permission must parse.
func (s *Signer) Issue(c Claims) (string, error) {
	if c.Tenant == "" {
		return "", errors.New("auth: issue: empty tenant")
	}
	for _, p := range c.Perms {
		if _, err := ParsePermission(p); err != nil {
			return "", fmt.Errorf("auth: issue: %w", err)
		}
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.IssuedAt.IsZero() {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		c.IssuedAt = now()
	}
	if c.ExpiresAt.IsZero() {
		ttl := s.TTL
		if ttl <= 0 {
			ttl = DefaultTTL
		}
		c.ExpiresAt = c.IssuedAt.Add(ttl)
	}
	perms := c.Perms
	if perms == nil {
		perms = []string{}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &wireClaims{
		Iss: c.Issuer, Sub: c.Subject, Aud: audience{c.Audience}, Tid: c.Tenant,
		Exp: numericDate(c.ExpiresAt), Iat: numericDate(c.IssuedAt), Perms: perms,
	})
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return signed, nil
}
