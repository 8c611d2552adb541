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

// authorizeRoute checks an admin request on rt: with the path's tenant,
// or as a cluster-wide request when rt.cluster says the route needs the
// cluster-wide permission, whose refusal then says so.
func (s *Server) authorizeRoute(rt route, r *http.Request) error {
	tenant := r.PathValue("tenant_id")
	if rt.cluster == "" {
		return s.authorize(r, tenant)
	}
	err := s.authorize(r, "")
	if err != nil && errors.Is(err, ErrForbidden) {
		return &clusterOnlyError{action: rt.cluster, tenant: tenant, err: err}
	}
	return err
}

// clusterOnlyError refuses a tenant's route that needs the cluster-wide
// admin permission to a credential without it (a tenant's admin).
type clusterOnlyError struct {
	action, tenant string
	err            error // Authorize's refusal, wrapping ErrForbidden
}

func (e *clusterOnlyError) Error() string {
	return fmt.Sprintf("%s needs the cluster-wide admin permission (admin:cluster, or the admin token), not only the tenant's (admin:tenant:%s): %v", e.action, e.tenant, e.err)
}

// Unwrap returns Authorize's refusal.
func (e *clusterOnlyError) Unwrap() error { return e.err }

// sameSecret compares a presented token with the admin token in time that
// depends on neither: their SHA-256 digests are compared, since
// subtle.ConstantTimeCompare returns at once on a length mismatch and so
// tells a caller timing it the admin token's length.
func sameSecret(presented, secret string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
