package controlplane

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, and whether there was one.
func BearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// staticTokenAuthorizer accepts exactly token; with no token configured it
// refuses everything.
func staticTokenAuthorizer(token string) func(*http.Request, string) error {
	return func(r *http.Request, _ string) error {
		if token == "" {
			return fmt.Errorf("%w: no admin credential is configured", ErrUnauthorized)
		}
		got, _ := BearerToken(r)
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return fmt.Errorf("%w: the admin token is not valid", ErrForbidden)
		}
		return nil
	}
}

// authorize checks an admin request: no bearer token is 401, a refusal by
// the authorizer is 403 (401 if it wraps ErrUnauthorized).
func (s *Server) authorize(r *http.Request, tenant string) error {
	if _, ok := BearerToken(r); !ok {
		return fmt.Errorf("%w: missing bearer token", ErrUnauthorized)
	}
	err := s.authz(r, tenant)
	if err == nil || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrForbidden, err)
}
