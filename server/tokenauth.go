package server

import (
	"context"
	"fmt"

	"github.com/felixmq/felix/auth"
)

// TokenAuth authenticates auth frames with Felix tokens (EdDSA JWTs, see
// package auth): the token must verify for the frame's tenant, and the
// stream may then do exactly what the token's permissions allow.
type TokenAuth struct {
	Verifier *auth.Verifier
}

// Authenticate verifies token for tenant. Its errors never contain the
// token.
func (a TokenAuth) Authenticate(_ context.Context, tenant, token string) (*Identity, error) {
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
