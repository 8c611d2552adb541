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
// cluster-wide routes, deleting a tenant included): a tenant's admin
// credential is refused on another tenant's routes and on every
// cluster-wide route, including with an escaped '/' or a tenant that is a
// prefix of another.
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
			tokens := []string{"admin-of-b", "admin-of-", "admin-of-a/", "admin-of-*"}
			if rt.cluster != "" {
				tokens = append(tokens, "admin-of-"+tenant) // its own tenant's admin too
			}
			for _, tok := range tokens {
				if tok == "admin-of-" && (!strings.Contains(rt.path, "{tenant_id}") || rt.cluster != "") {
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

// Deleting a tenant took the tenant's own admin credential (Authorize was
// asked with the path's tenant), so a tenant's admin could delete its
// tenant, which only a cluster admin can create. It is now asked as a
// cluster-wide route (tenant ""): a tenant's admin is refused with 403
// naming the permission it needs, and the tenant stays; a cluster admin
// deletes it.
func TestDeleteTenantNeedsClusterAdmin(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	srv, err := NewServer(Options{
		Store: st, AdminToken: testToken, Logger: quiet,
		Authorize: func(r *http.Request, tenant string) error {
			switch tok, _ := httpx.BearerToken(r); {
			case tok == "cluster-admin":
				return nil
			case tok == "admin-of-"+tenant && tenant != "":
				return nil
			}
			return errors.New("token lacks the admin permission")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	root := newClient(t, hs)
	tenantAdmin := apiClient{t: t, base: hs.URL, token: "admin-of-acme"}
	for _, id := range []string{"acme", "globex"} {
		root.must("POST", "/v1/tenants", Tenant{TenantID: id}, http.StatusCreated, nil)
	}
	// The tenant's admin still manages what is in its tenant.
	tenantAdmin.must("POST", "/v1/tenants/acme/namespaces", Namespace{Namespace: "orders"}, http.StatusCreated, nil)
	tenantAdmin.must("GET", "/v1/tenants/acme", nil, http.StatusOK, nil)

	eb := tenantAdmin.wantError("DELETE", "/v1/tenants/acme", nil, http.StatusForbidden, codeForbidden)
	if !strings.Contains(eb.Message, "admin:cluster") || !strings.Contains(eb.Message, "deleting a tenant") {
		t.Errorf("refusal message %q: want it to name admin:cluster and the action", eb.Message)
	}
	if _, err := st.Tenant("acme"); err != nil {
		t.Fatalf("the tenant after the refused delete: %v", err)
	}
	if _, err := st.Namespace(NamespaceKey{"acme", "orders"}); err != nil {
		t.Fatalf("the tenant's namespace after the refused delete: %v", err)
	}
	apiClient{t: t, base: hs.URL, token: "cluster-admin"}.must("DELETE", "/v1/tenants/acme", nil, http.StatusNoContent, nil)
	root.must("DELETE", "/v1/tenants/globex", nil, http.StatusNoContent, nil)
	for _, id := range []string{"acme", "globex"} {
		if _, err := st.Tenant(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("tenant %s after a cluster admin's delete: %v, want not found", id, err)
		}
	}
}
