package controlplane

import (
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
	if admin != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(admin)) == 1 {
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
