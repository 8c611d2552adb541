package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Client calls a control plane's HTTP API (Server) with an admin bearer
// token: the typed side of the routes in docs/controlplane.md, used by
// `felix admin` and by HTTPSource. Errors the API answers are *APIError,
// which unwraps to the package's sentinels (ErrNotFound, ErrExists,
// ErrValidation, ErrUnauthorized, ...). It is safe for concurrent use.
type Client struct {
	base   string
	token  string
	client *http.Client
}

// NewClient returns a Client for the control plane at baseURL (e.g.
// "http://127.0.0.1:8443", without /v1). client nil means an http.Client
// with a 10 s timeout.
func NewClient(baseURL, token string, client *http.Client) *Client {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	// A copy, so the caller's client is not changed: a redirect that
	// would turn a write into a GET (301, 302, 303) is answered as it is,
	// an error, rather than followed to a success that did nothing (the
	// API never redirects; a proxy sending http to https does).
	hc := *client
	follow := client.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		switch {
		case req.Method != via[0].Method:
			return http.ErrUseLastResponse
		case follow != nil:
			return follow(req, via)
		case len(via) >= 10:
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, client: &hc}
}

// BaseURL returns the API's base URL, as given to NewClient without a
// trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Tenants lists the tenants: the whole list in one answer (one
// consistent read of the store, but as large as the list). AllTenants
// reads it page by page.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	return apiList[Tenant](ctx, c, "/v1/tenants")
}

// TenantsPage reads one page of the tenants (GET /v1/tenants?limit=&after=).
func (c *Client) TenantsPage(ctx context.Context, o ListOptions) (Page[Tenant], error) {
	return apiPage[Tenant](ctx, c, "/v1/tenants", o)
}

// AllTenants iterates over the tenants a page of pageSize at a time (see
// allPages).
func (c *Client) AllTenants(ctx context.Context, pageSize int) iter.Seq2[Tenant, error] {
	return allPages(ctx, pageSize, func(o ListOptions) (Page[Tenant], error) { return c.TenantsPage(ctx, o) })
}

// CreateTenant creates t and returns it as stored.
func (c *Client) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	return apiCall[Tenant](ctx, c, http.MethodPost, "/v1/tenants", t)
}

// DeleteTenant deletes a tenant with everything in it. It needs the
// cluster-wide admin permission, as CreateTenant does.
func (c *Client) DeleteTenant(ctx context.Context, tenant string) error {
	return c.do(ctx, http.MethodDelete, tenantPath(tenant), nil, nil)
}

// Namespaces lists a tenant's namespaces, the whole list in one answer
// (AllNamespaces reads it page by page).
func (c *Client) Namespaces(ctx context.Context, tenant string) ([]Namespace, error) {
	return apiList[Namespace](ctx, c, tenantPath(tenant)+"/namespaces")
}

// NamespacesPage reads one page of a tenant's namespaces.
func (c *Client) NamespacesPage(ctx context.Context, tenant string, o ListOptions) (Page[Namespace], error) {
	return apiPage[Namespace](ctx, c, tenantPath(tenant)+"/namespaces", o)
}

// AllNamespaces iterates over a tenant's namespaces a page of pageSize at
// a time (see allPages).
func (c *Client) AllNamespaces(ctx context.Context, tenant string, pageSize int) iter.Seq2[Namespace, error] {
	return allPages(ctx, pageSize, func(o ListOptions) (Page[Namespace], error) { return c.NamespacesPage(ctx, tenant, o) })
}

// CreateNamespace creates n and returns it as stored.
func (c *Client) CreateNamespace(ctx context.Context, n Namespace) (Namespace, error) {
	return apiCall[Namespace](ctx, c, http.MethodPost, tenantPath(n.TenantID)+"/namespaces", n)
}

// DeleteNamespace deletes a namespace with its streams and caches.
func (c *Client) DeleteNamespace(ctx context.Context, k NamespaceKey) error {
	return c.do(ctx, http.MethodDelete, nsAPIPath(k), nil, nil)
}

// Streams lists the streams the control plane declares in a namespace,
// the whole list in one answer (AllStreams reads it page by page).
func (c *Client) Streams(ctx context.Context, k NamespaceKey) ([]Stream, error) {
	return apiList[Stream](ctx, c, nsAPIPath(k)+"/streams")
}

// StreamsPage reads one page of a namespace's streams.
func (c *Client) StreamsPage(ctx context.Context, k NamespaceKey, o ListOptions) (Page[Stream], error) {
	return apiPage[Stream](ctx, c, nsAPIPath(k)+"/streams", o)
}

// AllStreams iterates over a namespace's streams a page of pageSize at a
// time (see allPages).
func (c *Client) AllStreams(ctx context.Context, k NamespaceKey, pageSize int) iter.Seq2[Stream, error] {
	return allPages(ctx, pageSize, func(o ListOptions) (Page[Stream], error) { return c.StreamsPage(ctx, k, o) })
}

// Stream returns one stream.
func (c *Client) Stream(ctx context.Context, k StreamKey) (Stream, error) {
	return apiCall[Stream](ctx, c, http.MethodGet, streamAPIPath(k), nil)
}

// CreateStream creates s (empty fields get the API's defaults) and
// returns it as stored.
func (c *Client) CreateStream(ctx context.Context, s Stream) (Stream, error) {
	return apiCall[Stream](ctx, c, http.MethodPost, nsAPIPath(NamespaceKey{s.TenantID, s.Namespace})+"/streams", s)
}

// UpdateStream applies p (PATCH) and returns the stream as stored.
func (c *Client) UpdateStream(ctx context.Context, k StreamKey, p StreamPatch) (Stream, error) {
	return apiCall[Stream](ctx, c, http.MethodPatch, streamAPIPath(k), p)
}

// DeleteStream deletes a stream (a broker that follows deletes its log).
func (c *Client) DeleteStream(ctx context.Context, k StreamKey) error {
	return c.do(ctx, http.MethodDelete, streamAPIPath(k), nil, nil)
}

// Caches lists the caches the control plane declares in a namespace, the
// whole list in one answer (AllCaches reads it page by page).
func (c *Client) Caches(ctx context.Context, k NamespaceKey) ([]Cache, error) {
	return apiList[Cache](ctx, c, nsAPIPath(k)+"/caches")
}

// CachesPage reads one page of a namespace's caches.
func (c *Client) CachesPage(ctx context.Context, k NamespaceKey, o ListOptions) (Page[Cache], error) {
	return apiPage[Cache](ctx, c, nsAPIPath(k)+"/caches", o)
}

// AllCaches iterates over a namespace's caches a page of pageSize at a
// time (see allPages).
func (c *Client) AllCaches(ctx context.Context, k NamespaceKey, pageSize int) iter.Seq2[Cache, error] {
	return allPages(ctx, pageSize, func(o ListOptions) (Page[Cache], error) { return c.CachesPage(ctx, k, o) })
}

// Cache returns one cache.
func (c *Client) Cache(ctx context.Context, k CacheKey) (Cache, error) {
	return apiCall[Cache](ctx, c, http.MethodGet, cacheAPIPath(k), nil)
}

// CreateCache creates cc and returns it as stored.
func (c *Client) CreateCache(ctx context.Context, cc Cache) (Cache, error) {
	return apiCall[Cache](ctx, c, http.MethodPost, nsAPIPath(NamespaceKey{cc.TenantID, cc.Namespace})+"/caches", cc)
}

// UpdateCache applies p (PATCH) and returns the cache as stored.
func (c *Client) UpdateCache(ctx context.Context, k CacheKey, p CachePatch) (Cache, error) {
	return apiCall[Cache](ctx, c, http.MethodPatch, cacheAPIPath(k), p)
}

// DeleteCache deletes a cache.
func (c *Client) DeleteCache(ctx context.Context, k CacheKey) error {
	return c.do(ctx, http.MethodDelete, cacheAPIPath(k), nil, nil)
}

func tenantPath(t string) string { return "/v1/tenants/" + pathSegment(t) }

func nsAPIPath(k NamespaceKey) string {
	return tenantPath(k.TenantID) + "/namespaces/" + pathSegment(k.Namespace)
}

func streamAPIPath(k StreamKey) string {
	return nsAPIPath(NamespaceKey{k.TenantID, k.Namespace}) + "/streams/" + pathSegment(k.Stream)
}

func cacheAPIPath(k CacheKey) string {
	return nsAPIPath(NamespaceKey{k.TenantID, k.Namespace}) + "/caches/" + pathSegment(k.Cache)
}

// pathSegment escapes a name as one segment of a path. The names "." and
// ".." (valid names) are escaped as %2E too: as they are, the server's
// path cleaning would read them as the segments that move in the path,
// and another route would answer.
func pathSegment(name string) string {
	if name == "." || name == ".." {
		return strings.ReplaceAll(name, ".", "%2E")
	}
	return url.PathEscape(name)
}

// apiCall sends in (nil: no body) and decodes the answer into a T.
func apiCall[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	err := c.do(ctx, method, path, in, &out)
	return out, err
}

// apiList decodes a list answer ({"items":[...]}).
func apiList[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	v, err := apiCall[items[T]](ctx, c, http.MethodGet, path, nil)
	return v.Items, err
}

// apiPage reads one page of the list at path.
func apiPage[T any](ctx context.Context, c *Client, path string, o ListOptions) (Page[T], error) {
	p, err := apiCall[Page[T]](ctx, c, http.MethodGet, path+o.query(), nil)
	if err == nil && p.Items == nil {
		p.Items = []T{}
	}
	return p, err
}

// DefaultPageSize is the page size of the Client's iterators (AllTenants,
// AllNamespaces, AllStreams, AllCaches) when given 0.
const DefaultPageSize = 500

// allPages iterates over a list page by page: it reads a page of pageSize
// items (DefaultPageSize when <= 0, at most MaxListLimit), yields them,
// and reads the page after its Next, until a page without Next. A failed
// read is yielded once as (zero, err) and ends the iteration; so does a
// Next that does not move forward (a misbehaving server would loop). Each
// page is its own read: objects created or deleted meanwhile may or may
// not be seen, but no item is yielded twice and none that exists all
// along is missed (the cursor is a name, not an offset). A server without
// paging (the reference) answers everything in the first page.
func allPages[T any](ctx context.Context, pageSize int, page func(ListOptions) (Page[T], error)) iter.Seq2[T, error] {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxListLimit)
	return func(yield func(T, error) bool) {
		var zero T
		o := ListOptions{Limit: pageSize}
		for {
			if err := ctx.Err(); err != nil {
				yield(zero, err)
				return
			}
			p, err := page(o)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.Next == "" {
				return
			}
			if len(p.Items) == 0 || p.Next <= o.After {
				yield(zero, fmt.Errorf("control plane list: page after %q answered next %q with %d items: not moving forward", o.After, p.Next, len(p.Items)))
				return
			}
			o.After = p.Next
		}
	}
}

// do sends one request: in as its JSON body (none when nil), out decoded
// from a 2xx answer (ignored when nil). An answer is read up to
// maxSourceBody bytes; a larger one is an error, not a truncated value
// (an error answer keeps its status, and the start of its body).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control plane %s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("control plane %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("control plane %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSourceBody+1))
	if err != nil {
		return fmt.Errorf("control plane %s %s: %w", method, path, err)
	}
	if int64(len(b)) > maxSourceBody {
		return fmt.Errorf("control plane %s %s: answer larger than %d bytes", method, path, maxSourceBody)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control plane %s %s: decode: %w", method, path, err)
	}
	return nil
}

// BackupStore writes a copy of the control plane's store (GET
// /v1/admin/backup/store, a bbolt file; admin only) to w and returns the
// bytes written. A copy shorter than the answer's Content-Length (the
// control plane cut it after a failure) fails with io.ErrUnexpectedEOF.
func (c *Client) BackupStore(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+BackupStorePath, nil)
	if err != nil {
		return 0, fmt.Errorf("control plane GET %s: %w", BackupStorePath, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("control plane GET %s: %w", BackupStorePath, err)
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return 0, err
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// BackupStorePath is the route that answers a copy of the store.
const BackupStorePath = "/v1/admin/backup/store"

// answerError returns nil for a 2xx answer, else the *APIError it says
// (reading at most maxErrorBody of its body: an error answer of any size
// keeps its status, and its start says what went wrong).
func answerError(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
		eb.Code, eb.Message = codeInternal, plainMessage(b)
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			eb.Message = strings.TrimSpace("redirected to " + plainMessage([]byte(loc)) + " (not followed: give the API's own URL) " + eb.Message)
		}
	}
	return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// maxPlainMessage bounds the message taken from an error answer that is
// not the API's JSON (a proxy's HTML page, say).
const maxPlainMessage = 512

// plainMessage is the message of an error answer that is not the API's:
// its text with control characters as spaces (it is printed to
// terminals), cut to maxPlainMessage bytes.
func plainMessage(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxPlainMessage {
		cut := maxPlainMessage
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + " …"
	}
	return s
}
