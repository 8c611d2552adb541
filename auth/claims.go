package auth

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of Felix tokens (as the reference).
const (
	DefaultIssuer   = "felix-auth"
	DefaultAudience = "felix-broker"
	DefaultTTL      = 900 * time.Second
	DefaultLeeway   = 60 * time.Second
	// Algorithm is the only JWT algorithm Felix tokens use.
	Algorithm = "EdDSA"
)

// Claims are the claims of a Felix token.
type Claims struct {
	Issuer   string // iss; default DefaultIssuer when issuing
	Subject  string // sub: the principal id
	Tenant   string // tid
	Audience string // aud; default DefaultAudience when issuing
	Perms    []string
	// ExpiresAt is exp; when issuing, zero means IssuedAt + Signer TTL.
	ExpiresAt time.Time
	// IssuedAt is iat; when issuing, zero means the signer's now.
	IssuedAt time.Time
}

// audience is the aud claim: written as a single string (as the reference),
// read from a string or an array of strings.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = ss
	return nil
}

// wireClaims is the JSON form of a Felix token's claims; it implements
// jwt.Claims (claims are validated by Verifier itself, not by jwt).
type wireClaims struct {
	Iss   string           `json:"iss"`
	Sub   string           `json:"sub"`
	Aud   audience         `json:"aud"`
	Tid   string           `json:"tid"`
	Exp   *jwt.NumericDate `json:"exp,omitempty"`
	Iat   *jwt.NumericDate `json:"iat,omitempty"`
	Nbf   *jwt.NumericDate `json:"nbf,omitempty"`
	Perms []string         `json:"perms"`
}

// UnmarshalJSON reads the claims by their exact names (DecodeFields):
// "TID" or "Perms" are unknown claims, ignored, as for the reference,
// where encoding/json would read them as tid or perms; a name given twice
// is an error, so the token is malformed.
func (c *wireClaims) UnmarshalJSON(b []byte) error {
	*c = wireClaims{}
	return DecodeFields(b, map[string]any{
		"iss": &c.Iss, "sub": &c.Sub, "aud": &c.Aud, "tid": &c.Tid,
		"exp": &c.Exp, "iat": &c.Iat, "nbf": &c.Nbf, "perms": &c.Perms,
	})
}

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.Exp, nil }
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.Iat, nil }
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.Nbf, nil }
func (c *wireClaims) GetIssuer() (string, error)                   { return c.Iss, nil }
func (c *wireClaims) GetSubject() (string, error)                  { return c.Sub, nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(c.Aud), nil
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// PeekClaims reads the claims of a JWT without verifying it: for a client
// that wants to know when its own token expires, or which tenant it names,
// to say why a broker refused it or to renew it in time. Nothing read so
// may grant anything. ok is false for an opaque token or one that does not
// parse (Verify's rules: claim names are exact, a name given twice is
// malformed). Audience is the first aud value.
func PeekClaims(token string) (c Claims, ok bool) {
	var wc wireClaims
	if CheckJWTHeader(token) != nil {
		return Claims{}, false
	}
	if _, _, err := jwt.NewParser().ParseUnverified(token, &wc); err != nil {
		return Claims{}, false
	}
	c = Claims{Issuer: wc.Iss, Subject: wc.Sub, Tenant: wc.Tid, Perms: wc.Perms,
		ExpiresAt: timeOf(wc.Exp), IssuedAt: timeOf(wc.Iat)}
	if len(wc.Aud) > 0 {
		c.Audience = wc.Aud[0]
	}
	return c, true
}
