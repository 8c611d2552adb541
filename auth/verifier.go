package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeyProvider supplies the current verification keys: a *KeySet (fixed) or
// a *KeySource (reloaded).
type KeyProvider interface {
	Current() *KeySet
}

// Verifier checks Felix tokens. Only Keys is required; it is safe for
// concurrent use once configured.
type Verifier struct {
	// Keys are the verification keys.
	Keys KeyProvider
	// Issuer is the required iss. Default DefaultIssuer.
	Issuer string
	// Audience must be (one of) the token's aud. Default DefaultAudience.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default
	// DefaultLeeway (60 s); negative means none.
	Leeway time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxTokenBytes bounds a token's length, checked before it is parsed:
	// a longer token is refused with ErrTokenTooLarge, so a client cannot
	// make the broker decode and verify megabytes (frames may be up to
	// 16 MiB). Zero or negative means DefaultMaxTokenBytes.
	MaxTokenBytes int
}

// DefaultMaxTokenBytes is the default bound on a token's length (16 KiB):
// Felix tokens are a few hundred bytes and real OIDC/JWT tokens a few KiB.
const DefaultMaxTokenBytes = 16 << 10

// Verify checks token, presented for tenant, and returns its claims.
//
// The algorithm must be EdDSA; the key named by the header's kid is tried
// first, then every other key usable for tenant. Then exp (required) must
// not have passed and nbf and iat must not lie in the future (each with the
// leeway), iss and aud must match and tid must equal tenant. Claim names
// are matched exactly, as the reference does: "TID" is an unknown claim,
// ignored, not tid. Failures are *TokenError with the reasons of this
// package: ErrNoToken for an empty token, ErrMalformed for what does not
// parse, lacks exp, or names a member of its header or claims twice
// (CheckUniqueNames), ErrUnknownKey when no usable key verifies and the
// kid is not one of them (or there are none), ErrBadSignature when the kid
// is known or the alg is not EdDSA, and, before any parsing,
// ErrTokenTooLarge for a token over MaxTokenBytes.
func (v *Verifier) Verify(token, tenant string) (*Claims, error) {
	if token == "" {
		return nil, tokenErr(ErrNoToken)
	}
	if limit := v.maxTokenBytes(); len(token) > limit {
		return nil, &TokenError{Reason: ErrTokenTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(token), limit)}
	}
	if CheckJWTHeader(token) != nil {
		return nil, tokenErr(ErrMalformed)
	}
	var keys *KeySet
	if v.Keys != nil {
		keys = v.Keys.Current()
	}
	kidKnown := false
	keyfunc := func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		var set jwt.VerificationKeySet
		if k, ok := keys.Lookup(kid); ok && usableFor(k, tenant) {
			kidKnown = true
			set.Keys = append(set.Keys, k.Public)
		}
		for _, k := range keys.Keys() {
			if k.ID != kid && usableFor(k, tenant) {
				set.Keys = append(set.Keys, k.Public)
			}
		}
		if len(set.Keys) == 0 {
			return nil, ErrUnknownKey
		}
		return set, nil
	}
	var wc wireClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{Algorithm}), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(token, &wc, keyfunc); err != nil {
		switch {
		case errors.Is(err, ErrUnknownKey):
			return nil, tokenErr(ErrUnknownKey)
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, tokenErr(ErrMalformed)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !kidKnown && keys.Len() > 0 && isEdDSA(token, parser):
			return nil, tokenErr(ErrUnknownKey)
		default:
			return nil, tokenErr(ErrBadSignature)
		}
	}
	if err := v.checkClaims(&wc, tenant); err != nil {
		return nil, tokenErr(err)
	}
	c := &Claims{
		Issuer: wc.Iss, Subject: wc.Sub, Tenant: wc.Tid, Audience: v.audience(),
		Perms: wc.Perms, ExpiresAt: timeOf(wc.Exp), IssuedAt: timeOf(wc.Iat),
	}
	return c, nil
}

// isEdDSA reports whether token's header names EdDSA (a token with another
// alg is a bad signature, not an unknown key).
func isEdDSA(token string, p *jwt.Parser) bool {
	t, _, err := p.ParseUnverified(token, &wireClaims{})
	return err == nil && t.Method.Alg() == Algorithm
}

func usableFor(k Key, tenant string) bool { return k.Tenant == "" || k.Tenant == tenant }

func (v *Verifier) checkClaims(c *wireClaims, tenant string) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now()
	leeway := v.leeway()
	if c.Exp == nil {
		return ErrMalformed
	}
	if !t.Before(c.Exp.Add(leeway)) {
		return ErrExpired
	}
	if c.Nbf != nil && t.Add(leeway).Before(c.Nbf.Time) {
		return ErrNotYetValid
	}
	if c.Iat != nil && t.Add(leeway).Before(c.Iat.Time) {
		return ErrNotYetValid
	}
	iss := v.Issuer
	if iss == "" {
		iss = DefaultIssuer
	}
	if c.Iss != iss {
		return ErrWrongIssuer
	}
	if !slices.Contains(c.Aud, v.audience()) {
		return ErrWrongAudience
	}
	if tenant == "" || c.Tid != tenant {
		return ErrWrongTenant
	}
	return nil
}

// leeway is Leeway with its default applied.
func (v *Verifier) leeway() time.Duration {
	switch {
	case v.Leeway == 0:
		return DefaultLeeway
	case v.Leeway < 0:
		return 0
	}
	return v.Leeway
}

// ValidUntil is the instant from which Verify refuses a token with these
// claims as expired: ExpiresAt plus the leeway. A broker ends the streams a
// token opened at that instant, so rights end with the token.
func (v *Verifier) ValidUntil(c *Claims) time.Time {
	return c.ExpiresAt.Add(v.leeway())
}

// maxTokenBytes is MaxTokenBytes with its default applied.
func (v *Verifier) maxTokenBytes() int {
	if v.MaxTokenBytes <= 0 {
		return DefaultMaxTokenBytes
	}
	return v.MaxTokenBytes
}

func (v *Verifier) audience() string {
	if v.Audience == "" {
		return DefaultAudience
	}
	return v.Audience
}
