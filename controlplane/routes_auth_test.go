package controlplane

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/httpx"
)

// Every admin route asks Authorize with its path's tenant ("" on
// cluster-wide routes): a tenant's admin credential is refused on another
// tenant's routes and on every cluster-wide route, including with an
// escaped '/' or a tenant that is a prefix of another.
func TestEveryRouteRefusesWrongTenant(t *testing.T) {
	srv, err := NewServer(Options{
		Store: openTestStore(t, t.TempDir(), StoreOptions{}), Logger: quiet,
		Authorize: func(r *http.Request, tenant string) error {
			if tok, _ := httpx.BearerToken(r); tok != "admin-of-"+tenant {
				return errors.New("not an admin of this tenant")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	for _, tenant := range []string{"a", "ab", "a%2Fb", "%61"} {
		for _, rt := range routes {
			if rt.public {
				continue
			}
			path := strings.NewReplacer("{tenant_id}", tenant, "{namespace}", "n", "{stream}", "s", "{cache}", "c", "{region_id}", "local").Replace(rt.path)
			for _, tok := range []string{"admin-of-b", "admin-of-", "admin-of-a/", "admin-of-*"} {
				if tok == "admin-of-" && !strings.Contains(rt.path, "{tenant_id}") {
					continue // the cluster credential, in this hook's terms
				}
				apiClient{t: t, base: hs.URL, token: tok}.wantError(rt.method, path, nil, http.StatusForbidden, codeForbidden)
			}
		}
	}
}

// A snapshot larger than the follower reads is refused with an error
// that says so, not a JSON error about a truncated document.
func TestHTTPSourceSaysWhenAnswerTooLarge(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	for _, id := range []string{"a", "b", "c"} {
		must[Tenant](t)(st.CreateTenant(Tenant{TenantID: id}))
	}
	hs := startAPI(t, st)
	defer func(n int64) { maxSourceBody = n }(maxSourceBody)
	maxSourceBody = 100
	_, err := NewHTTPSource(hs.URL, testToken, nil).Snapshot(t.Context())
	if err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Fatalf("oversized snapshot: %v", err)
	}
}
