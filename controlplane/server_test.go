package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/httpx"
)

func TestAPIRefusesWithoutCredentials(t *testing.T) {
	hs := startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{}))
	anon := apiClient{t: t, base: hs.URL}
	bad := apiClient{t: t, base: hs.URL, token: "guess"}
	for _, rt := range routes {
		path := strings.NewReplacer("{tenant_id}", "t", "{namespace}", "n", "{stream}", "s", "{cache}", "c", "{region_id}", "local").Replace(rt.path)
		if rt.public {
			anon.must(rt.method, path, nil, http.StatusOK, nil)
			continue
		}
		anon.wantError(rt.method, path, nil, http.StatusUnauthorized, codeUnauthorized)
		bad.wantError(rt.method, path, nil, http.StatusForbidden, codeForbidden)
	}
	// A non-bearer scheme is no credential.
	req, _ := http.NewRequest("GET", hs.URL+"/v1/tenants", nil)
	req.Header.Set("Authorization", "Basic "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("basic auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestAPINoAdminTokenRefusesEverything(t *testing.T) {
	srv, err := NewServer(Options{Store: openTestStore(t, t.TempDir(), StoreOptions{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := apiClient{t: t, base: hs.URL, token: "anything"}
	c.wantError("GET", "/v1/tenants", nil, http.StatusUnauthorized, codeUnauthorized)
	c.must("GET", "/v1/system/health", nil, http.StatusOK, nil)
}

func TestAPIAuthorizeHookAndMount(t *testing.T) {
	var seen []string
	mounted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "jwks of %s", r.PathValue("tenant_id"))
	})
	srv, err := NewServer(Options{
		Store: openTestStore(t, t.TempDir(), StoreOptions{}), Logger: quiet,
		Authorize: func(r *http.Request, tenant string) error {
			seen = append(seen, tenant)
			tok, _ := httpx.BearerToken(r)
			switch {
			case tok == "expired":
				return fmt.Errorf("token expired: %w", ErrUnauthorized)
			case tok != "admin-of-"+tenant:
				return errors.New("not an admin of this tenant")
			}
			return nil
		},
		Mount: map[string]http.Handler{"GET /v1/tenants/{tenant_id}/.well-known/jwks.json": mounted},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	apiClient{t: t, base: hs.URL, token: "admin-of-"}.must("POST", "/v1/tenants", Tenant{TenantID: "a"}, http.StatusCreated, nil)
	apiClient{t: t, base: hs.URL, token: "admin-of-a"}.must("GET", "/v1/tenants/a/namespaces", nil, http.StatusOK, nil)
	apiClient{t: t, base: hs.URL, token: "admin-of-b"}.wantError("GET", "/v1/tenants/a/namespaces", nil, http.StatusForbidden, codeForbidden)
	apiClient{t: t, base: hs.URL, token: "expired"}.wantError("GET", "/v1/tenants/a", nil, http.StatusUnauthorized, codeUnauthorized)
	if strings.Join(seen, ",") != ",a,a,a" {
		t.Fatalf("Authorize saw tenants %q", seen)
	}
	code, body := apiClient{t: t, base: hs.URL}.call("GET", "/v1/tenants/a/.well-known/jwks.json", nil)
	if code != http.StatusOK || string(body) != "jwks of a" {
		t.Fatalf("mounted handler: %d %s", code, body)
	}
	if _, err := NewServer(Options{Store: srv.opts.Store, Mount: map[string]http.Handler{"GET /v1/tenants": mounted}}); err == nil {
		t.Fatal("a mount colliding with an API route was accepted")
	}
}

func TestAPICRUD(t *testing.T) {
	hs := startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{}))
	c := newClient(t, hs)
	var ten Tenant
	c.must("POST", "/v1/tenants", Tenant{TenantID: "acme", DisplayName: "Acme"}, http.StatusCreated, &ten)
	if ten.DisplayName != "Acme" {
		t.Fatalf("tenant %+v", ten)
	}
	c.wantError("POST", "/v1/tenants", Tenant{TenantID: "acme"}, http.StatusConflict, codeExists)
	c.wantError("POST", "/v1/tenants/nobody/namespaces", map[string]string{"namespace": "x"}, http.StatusNotFound, codeNotFound)
	c.must("POST", "/v1/tenants/acme/namespaces", map[string]string{"namespace": "orders", "display_name": "Orders"}, http.StatusCreated, nil)
	c.wantError("POST", "/v1/tenants/acme/namespaces", map[string]string{"namespace": "orders"}, http.StatusConflict, codeExists)

	base := "/v1/tenants/acme/namespaces/orders"
	var s Stream
	c.must("POST", base+"/streams", map[string]any{"stream": "placed", "durable": true, "fsync": "always",
		"retention": map[string]any{"max_size_bytes": 1 << 30}}, http.StatusCreated, &s)
	if s.TenantID != "acme" || s.Namespace != "orders" || !s.Durable || s.Fsync != "always" || *s.Retention.MaxSizeBytes != 1<<30 || s.Kind != "Stream" {
		t.Fatalf("created stream %+v", s)
	}
	c.wantError("POST", base+"/streams", map[string]any{"stream": "placed"}, http.StatusConflict, codeConflict)
	c.must("GET", base+"/streams/placed", nil, http.StatusOK, &s)
	c.must("PATCH", base+"/streams/placed", map[string]any{"durable": false, "delivery": "AtLeastOnce"}, http.StatusOK, &s)
	if s.Durable || s.Delivery != DeliveryAtLeastOnce || s.Fsync != "always" {
		t.Fatalf("patched stream %+v", s)
	}
	var list items[Stream]
	c.must("GET", base+"/streams", nil, http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].Stream != "placed" {
		t.Fatalf("stream list %+v", list)
	}
	c.must("DELETE", base+"/streams/placed", nil, http.StatusNoContent, nil)
	c.wantError("GET", base+"/streams/placed", nil, http.StatusNotFound, codeNotFound)
	c.wantError("DELETE", base+"/streams/placed", nil, http.StatusNotFound, codeNotFound)

	var ca Cache
	c.must("POST", base+"/caches", map[string]any{"cache": "sessions", "display_name": "S", "capacity_bytes": 4096}, http.StatusCreated, &ca)
	c.wantError("POST", base+"/caches", map[string]any{"cache": "sessions"}, http.StatusConflict, codeConflict)
	c.must("PATCH", base+"/caches/sessions", map[string]any{"capacity_bytes": 8192}, http.StatusOK, &ca)
	if ca.CapacityBytes != 8192 || ca.DisplayName != "S" {
		t.Fatalf("patched cache %+v", ca)
	}
	var clist items[Cache]
	c.must("GET", base+"/caches", nil, http.StatusOK, &clist)
	if len(clist.Items) != 1 {
		t.Fatalf("cache list %+v", clist)
	}
	c.must("DELETE", "/v1/tenants/acme", nil, http.StatusNoContent, nil)
	c.wantError("GET", base+"/caches/sessions", nil, http.StatusNotFound, codeNotFound)
	c.wantError("GET", "/v1/tenants/acme/namespaces", nil, http.StatusNotFound, codeNotFound)

	var info systemInfo
	c.must("GET", "/v1/system/info", nil, http.StatusOK, &info)
	if info.RegionID != "local" || info.APIVersion != "v1" || !info.Features.DurableStorage {
		t.Fatalf("info %+v", info)
	}
	c.wantError("GET", "/v1/regions/mars", nil, http.StatusNotFound, codeNotFound)
}

func TestAPIValidationNamesTheField(t *testing.T) {
	hs := startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{}))
	c := newClient(t, hs)
	c.must("POST", "/v1/tenants", Tenant{TenantID: "t"}, http.StatusCreated, nil)
	c.must("POST", "/v1/tenants/t/namespaces", map[string]string{"namespace": "n"}, http.StatusCreated, nil)
	streams := "/v1/tenants/t/namespaces/n/streams"
	for _, tc := range []struct {
		path  string
		body  any
		field string
	}{
		{"/v1/tenants", map[string]string{"tenant_id": ""}, "tenant_id"},
		{"/v1/tenants", map[string]string{"tenant_id": "a/b"}, "tenant_id"},
		{"/v1/tenants", map[string]string{"tenant_id": strings.Repeat("x", 256)}, "tenant_id"},
		{"/v1/tenants", map[string]string{"tenant_id": "x", "colour": "red"}, "body"},
		{"/v1/tenants", `{"tenant_id": 7}`, "tenant_id"},
		{"/v1/tenants", `{"tenant_id": "x"} {}`, "body"},
		{streams, map[string]any{"stream": "s", "retention": map[string]any{"max_age_seconds": -1}}, "retention.max_age_seconds"},
		// 2^64 ns in seconds: as a time.Duration it wraps to 0.29 s, which
		// would delete nearly every record of the stream.
		{streams, map[string]any{"stream": "s", "retention": map[string]any{"max_age_seconds": 18446744074}}, "retention.max_age_seconds"},
		{streams, map[string]any{"stream": "s", "fsync": "sometimes"}, "fsync"},
		{streams, map[string]any{"stream": "s", "tenant_id": "other"}, "tenant_id"},
		{"/v1/tenants/t/namespaces/n/caches", map[string]any{"cache": "c", "capacity_bytes": -1}, "capacity_bytes"},
	} {
		eb := c.wantError("POST", tc.path, tc.body, http.StatusBadRequest, codeValidation)
		if !strings.Contains(eb.Message, tc.field) {
			t.Errorf("POST %s %v: message %q does not name %s", tc.path, tc.body, eb.Message, tc.field)
		}
	}
	c.wantError("GET", "/v1/changes?since=-1", nil, http.StatusBadRequest, codeValidation)
	c.wantError("GET", "/v1/changes?limit=0", nil, http.StatusBadRequest, codeValidation)
	// The error body has the reference's shape, request_id included.
	_, raw := c.call("GET", "/v1/tenants/none", nil)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["request_id"]; !ok || v != nil || len(m) != 3 {
		t.Fatalf("error body %s", raw)
	}
}

// TestChangesPagingNeverSkips creates 2500 objects and pages the feed 1000
// at a time: every change is seen exactly once, in order.
func TestChangesPagingNeverSkips(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	st.db.NoSync = true // 2500 commits: skip fsync, not what is tested here
	hs := startAPI(t, st)
	c := newClient(t, hs)
	var snap0 Snapshot
	c.must("GET", "/v1/snapshot", nil, http.StatusOK, &snap0)
	if snap0.NextSeq != 1 || len(snap0.Tenants) != 0 {
		t.Fatalf("empty snapshot %+v", snap0)
	}
	if _, err := st.CreateTenant(Tenant{TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}); err != nil {
		t.Fatal(err)
	}
	const total = 2500
	for i := 2; i < total; i++ {
		if _, err := st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: fmt.Sprintf("s%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	next, pages := uint64(0), 0
	for {
		var page ChangesPage
		c.must("GET", fmt.Sprintf("/v1/changes?since=%d&limit=5000", next), nil, http.StatusOK, &page)
		pages++
		if len(page.Items) > DefaultChangesLimit {
			t.Fatalf("page of %d items, limit is %d", len(page.Items), DefaultChangesLimit)
		}
		for _, ch := range page.Items {
			if ch.Seq != uint64(len(seen)+1) {
				t.Fatalf("seq %d after %d changes: skipped or repeated", ch.Seq, len(seen))
			}
			seen[ch.Kind+"/"+ch.Key.Stream] = true
		}
		if len(page.Items) > 0 && page.NextSeq != page.Items[len(page.Items)-1].Seq+1 {
			t.Fatalf("next_seq %d is not one past the last item %d", page.NextSeq, page.Items[len(page.Items)-1].Seq)
		}
		next = page.NextSeq
		if !page.More {
			break
		}
	}
	if len(seen) != total || pages != 3 || next != total+1 {
		t.Fatalf("saw %d changes in %d pages, next %d", len(seen), pages, next)
	}
	var snap Snapshot
	c.must("GET", "/v1/snapshot", nil, http.StatusOK, &snap)
	if snap.NextSeq != next || len(snap.Streams) != total-2 || snap.StoreID != st.ID() {
		t.Fatalf("snapshot next_seq %d streams %d", snap.NextSeq, len(snap.Streams))
	}
}

func TestChangesGoneIsResyncRequired(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{ChangeRetention: 10})
	hs := startAPI(t, st)
	c := newClient(t, hs)
	for i := range 20 {
		c.must("POST", "/v1/tenants", Tenant{TenantID: fmt.Sprint("t", i)}, http.StatusCreated, nil)
	}
	c.wantError("GET", "/v1/changes?since=1", nil, http.StatusGone, codeResync)
	var page ChangesPage
	c.must("GET", "/v1/changes?since=11", nil, http.StatusOK, &page)
	if len(page.Items) != 10 || page.NextSeq != 21 {
		t.Fatalf("retained page: %d items, next %d", len(page.Items), page.NextSeq)
	}
	_, err := NewHTTPSource(hs.URL, testToken, nil).Changes(t.Context(), 1, 10)
	if !errors.Is(err, ErrResyncRequired) {
		t.Fatalf("HTTPSource: %v, want ErrResyncRequired", err)
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	hs := startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{}))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	apiClient{t: t, base: hs.URL}.must("GET", "/v1/openapi.json", nil, http.StatusOK, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := 0
	for _, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented++
			}
		}
	}
	for _, rt := range routes {
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("%s %s is not in openapi.json", rt.method, rt.path)
		}
	}
	if documented != len(routes) {
		t.Errorf("openapi.json documents %d operations, the API has %d routes", documented, len(routes))
	}
}
