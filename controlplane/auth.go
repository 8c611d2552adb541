package controlplane

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"

	"github.com/felixmq/felix/internal/httpx"
)

// authorize checks an admin request: no bearer token is 401; the static
// AdminToken is accepted; any other token is Authorize's to judge, whose
// refusal is 403 (401 if it wraps ErrUnauthorized). Without Authorize, a
// token that is not AdminToken is 403, or 401 when no AdminToken is set.
func (s *Server) authorize(r *http.Request, tenant string) error {
	tok, ok := httpx.BearerToken(r)
	if !ok {
		return fmt.Errorf("%w: missing bearer token", ErrUnauthorized)
	}
	admin := s.opts.AdminToken
	if admin != "" && sameSecret(tok, admin) {
		return nil
	}
	if s.opts.Authorize == nil {
		if admin == "" {
			return fmt.Errorf("%w: no admin credential is configured", ErrUnauthorized)
		}
		return fmt.Errorf("%w: the admin token is not valid", ErrForbidden)
	}
	err := s.opts.Authorize(r, tenant)
	if err == nil || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrForbidden, err)
}

// sameSecret compares a presented token with the admin token in time that
// depends on neither: their SHA-256 digests are compared, since
// subtle.ConstantTimeCompare returns at once on a length mismatch and so
// tells a caller timing it the admin token's length.
func sameSecret(presented, secret string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
