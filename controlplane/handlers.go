package controlplane

import (
	_ "embed"
	"net/http"
	"strconv"

	"github.com/felixmq/felix/internal/httpx"
)

//go:embed openapi.json
var openAPIDoc []byte

// routes is the API. Every entry is described in openapi.json (a test
// checks it).
var routes = []route{
	{method: "GET", path: "/v1/system/health", public: true, h: (*Server).health},
	{method: "GET", path: "/v1/openapi.json", public: true, h: (*Server).openAPI},
	{method: "GET", path: "/v1/system/info", h: (*Server).info},
	{method: "GET", path: "/v1/regions", h: (*Server).regions},
	{method: "GET", path: "/v1/regions/{region_id}", h: (*Server).region},
	{method: "GET", path: "/v1/snapshot", h: (*Server).snapshot},
	{method: "GET", path: "/v1/changes", h: (*Server).changes},
	{method: "GET", path: BackupStorePath, h: (*Server).backupStore},
	{method: "GET", path: "/v1/tenants", h: (*Server).listTenants},
	{method: "POST", path: "/v1/tenants", h: (*Server).createTenant},
	{method: "GET", path: "/v1/tenants/{tenant_id}", h: (*Server).getTenant},
	{method: "DELETE", path: "/v1/tenants/{tenant_id}", cluster: "deleting a tenant", h: (*Server).deleteTenant},
	{method: "GET", path: "/v1/tenants/{tenant_id}/namespaces", h: (*Server).listNamespaces},
	{method: "POST", path: "/v1/tenants/{tenant_id}/namespaces", h: (*Server).createNamespace},
	{method: "GET", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}", h: (*Server).getNamespace},
	{method: "DELETE", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}", h: (*Server).deleteNamespace},
	{method: "GET", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/streams", h: (*Server).listStreams},
	{method: "POST", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/streams", h: (*Server).createStream},
	{method: "GET", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/streams/{stream}", h: (*Server).getStream},
	{method: "PATCH", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/streams/{stream}", h: (*Server).patchStream},
	{method: "DELETE", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/streams/{stream}", h: (*Server).deleteStream},
	{method: "GET", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/caches", h: (*Server).listCaches},
	{method: "POST", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/caches", h: (*Server).createCache},
	{method: "GET", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/caches/{cache}", h: (*Server).getCache},
	{method: "PATCH", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/caches/{cache}", h: (*Server).patchCache},
	{method: "DELETE", path: "/v1/tenants/{tenant_id}/namespaces/{namespace}/caches/{cache}", h: (*Server).deleteCache},
}

// items is the list shape of the reference. The lists of objects answer
// a Page, the same shape plus "next" when paged.
type items[T any] struct {
	Items []T `json:"items"`
}

func ok(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, v)
	return nil
}

func created(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func listed[T any](w http.ResponseWriter, v []T, err error) error {
	return ok(w, items[T]{Items: v}, err)
}

func nsPath(r *http.Request) NamespaceKey {
	return NamespaceKey{r.PathValue("tenant_id"), r.PathValue("namespace")}
}

func streamPath(r *http.Request) StreamKey {
	return StreamKey{r.PathValue("tenant_id"), r.PathValue("namespace"), r.PathValue("stream")}
}

func cachePath(r *http.Request) CacheKey {
	return CacheKey{r.PathValue("tenant_id"), r.PathValue("namespace"), r.PathValue("cache")}
}

// inNamespace fills a body's tenant_id and namespace from the path,
// refusing values that disagree with it.
func inNamespace(r *http.Request, tenant, ns *string) error {
	k := nsPath(r)
	var err error
	if *tenant, err = pathMatch("tenant_id", *tenant, k.TenantID); err != nil {
		return err
	}
	*ns, err = pathMatch("namespace", *ns, k.Namespace)
	return err
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Store.Ping(); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
	return nil
}

type features struct {
	DurableStorage bool `json:"durable_storage"`
	TieredStorage  bool `json:"tiered_storage"`
	Bridges        bool `json:"bridges"`
}

type systemInfo struct {
	RegionID   string   `json:"region_id"`
	APIVersion string   `json:"api_version"`
	Features   features `json:"features"`
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	return ok(w, systemInfo{RegionID: s.opts.RegionID, APIVersion: "v1", Features: features{DurableStorage: true}}, nil)
}

type regionInfo struct {
	RegionID    string `json:"region_id"`
	DisplayName string `json:"display_name"`
}

func (s *Server) thisRegion() regionInfo {
	return regionInfo{RegionID: s.opts.RegionID, DisplayName: "Local Region"}
}

func (s *Server) regions(w http.ResponseWriter, r *http.Request) error {
	return listed(w, []regionInfo{s.thisRegion()}, nil)
}

func (s *Server) region(w http.ResponseWriter, r *http.Request) error {
	if id := r.PathValue("region_id"); id != s.opts.RegionID {
		return notFound("region", id)
	}
	return ok(w, s.thisRegion(), nil)
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) error {
	snap, err := s.opts.Store.Snapshot(r.Context())
	return ok(w, snap, err)
}

// changes serves ?since=N&limit=M, read strictly (readQuery: a since that
// does not parse is refused, never read as 0). next_seq in the answer is
// one past the last returned change, so paging with it never skips.
func (s *Server) changes(w http.ResponseWriter, r *http.Request) error {
	q, err := readQuery(r, "since", "limit")
	if err != nil {
		return err
	}
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return &ValidationError{Field: "since", Message: "must be a non-negative integer"}
		}
		since = n
	}
	limit := s.opts.ChangesLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return &ValidationError{Field: "limit", Message: "must be a positive integer"}
		}
		limit = min(n, s.opts.ChangesLimit)
	}
	page, err := s.opts.Store.Changes(r.Context(), since, limit)
	return ok(w, page, err)
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.opts.Store.TenantsPage(o)
	return ok(w, p, err)
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) error {
	var t Tenant
	if err := decodeBody(r, &t); err != nil {
		return err
	}
	t, err := s.opts.Store.CreateTenant(t)
	return created(w, t, err)
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) error {
	t, err := s.opts.Store.Tenant(r.PathValue("tenant_id"))
	return ok(w, t, err)
}

func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.opts.Store.DeleteTenant(r.PathValue("tenant_id")))
}

func (s *Server) listNamespaces(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.opts.Store.NamespacesPage(r.PathValue("tenant_id"), o)
	return ok(w, p, err)
}

func (s *Server) createNamespace(w http.ResponseWriter, r *http.Request) error {
	var n Namespace
	if err := decodeBody(r, &n); err != nil {
		return err
	}
	var err error
	if n.TenantID, err = pathMatch("tenant_id", n.TenantID, r.PathValue("tenant_id")); err != nil {
		return err
	}
	n, err = s.opts.Store.CreateNamespace(n)
	return created(w, n, err)
}

func (s *Server) getNamespace(w http.ResponseWriter, r *http.Request) error {
	n, err := s.opts.Store.Namespace(nsPath(r))
	return ok(w, n, err)
}

func (s *Server) deleteNamespace(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.opts.Store.DeleteNamespace(nsPath(r)))
}

func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.opts.Store.StreamsPage(nsPath(r), o)
	return ok(w, p, err)
}

func (s *Server) createStream(w http.ResponseWriter, r *http.Request) error {
	var st Stream
	if err := decodeBody(r, &st); err != nil {
		return err
	}
	if err := inNamespace(r, &st.TenantID, &st.Namespace); err != nil {
		return err
	}
	st, err := s.opts.Store.CreateStream(st)
	return created(w, st, err)
}

func (s *Server) getStream(w http.ResponseWriter, r *http.Request) error {
	st, err := s.opts.Store.Stream(streamPath(r))
	return ok(w, st, err)
}

func (s *Server) patchStream(w http.ResponseWriter, r *http.Request) error {
	var p StreamPatch
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	st, err := s.opts.Store.UpdateStream(streamPath(r), p)
	return ok(w, st, err)
}

func (s *Server) deleteStream(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.opts.Store.DeleteStream(streamPath(r)))
}

func (s *Server) listCaches(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := s.opts.Store.CachesPage(nsPath(r), o)
	return ok(w, p, err)
}

func (s *Server) createCache(w http.ResponseWriter, r *http.Request) error {
	var c Cache
	if err := decodeBody(r, &c); err != nil {
		return err
	}
	if err := inNamespace(r, &c.TenantID, &c.Namespace); err != nil {
		return err
	}
	c, err := s.opts.Store.CreateCache(c)
	return created(w, c, err)
}

func (s *Server) getCache(w http.ResponseWriter, r *http.Request) error {
	c, err := s.opts.Store.Cache(cachePath(r))
	return ok(w, c, err)
}

func (s *Server) patchCache(w http.ResponseWriter, r *http.Request) error {
	var p CachePatch
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	c, err := s.opts.Store.UpdateCache(cachePath(r), p)
	return ok(w, c, err)
}

func (s *Server) deleteCache(w http.ResponseWriter, r *http.Request) error {
	return noContent(w, s.opts.Store.DeleteCache(cachePath(r)))
}
