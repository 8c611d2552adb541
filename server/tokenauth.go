package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/felixmq/felix/auth"
)

// TokenAuth authenticates auth frames with Felix tokens (EdDSA JWTs, see
// package auth): the token must verify for the frame's tenant, and the
// stream may then do exactly what the token's permissions allow.
type TokenAuth struct {
	// Verifier checks the tokens; without one every token is refused.
	Verifier *auth.Verifier
}

var errNoVerifier = errors.New("token auth: no verifier configured")

// Authenticate verifies token for tenant. Its errors never contain the
// token.
func (a TokenAuth) Authenticate(_ context.Context, tenant, token string) (*Identity, error) {
	if a.Verifier == nil {
		return nil, errNoVerifier
	}
	c, err := a.Verifier.Verify(token, tenant)
	if err != nil {
		return nil, err
	}
	m, err := auth.NewMatcher(c.Perms)
	if err != nil {
		return nil, fmt.Errorf("token of %q: %w", c.Subject, err)
	}
	return &Identity{Tenant: tenant, Subject: c.Subject, Allow: m.Allows, Expires: a.Verifier.ValidUntil(c)}, nil
}
