package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// oddNames are valid names that a URL query must escape: '%', '?', '#',
// '&', '=', '+' (a space when not escaped), ';' (refused by Go's query
// parser when not escaped), quotes, non-ASCII, "." and "..".
var oddNames = []string{"100%", "a?b#c", "x&y=z", "+plus", "a+b", "semi;colon", `q"uote`, `back\slash`, "ünï", "😀", ".", "..", "%2F", "~t", "[br]", "eq="}

// pagedStore is a store served on 127.0.0.1 with the namespace acme/orders
// holding n streams (oddNames, then s-00000, s-00001, ...) and, to check
// that a page never reads past its namespace, the namespaces acme/orders0
// and acme/order holding streams of their own (their keys sort right
// after and right before acme/orders/...). It returns the names in byte
// order.
func pagedStore(t *testing.T, n int) (*Store, *httptest.Server, []string) {
	t.Helper()
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	if _, err := st.CreateTenant(Tenant{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"order", "orders", "orders0"} {
		if _, err := st.CreateNamespace(Namespace{TenantID: "acme", Namespace: ns}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"order", "orders0"} {
		for _, name := range []string{"!", "a", "zzz"} {
			if _, err := st.CreateStream(Stream{TenantID: "acme", Namespace: ns, Stream: name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var names []string
	for i := range n {
		name := fmt.Sprintf("s-%05d", i-len(oddNames))
		if i < len(oddNames) {
			name = oddNames[i]
		}
		names = append(names, name)
	}
	// The streams in one transaction (thousands of commits take seconds
	// under -race), each created as CreateStream does.
	err := st.update(func(w *wtx) error {
		for _, name := range names {
			s := Stream{TenantID: "acme", Namespace: "orders", Stream: name}.withDefaults()
			if err := s.validate(); err != nil {
				return err
			}
			if err := w.createLeaf(s.Key().ref(), s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names) // Go compares strings byte-wise
	return st, startAPI(t, st), names
}

const ordersStreams = "/v1/tenants/acme/namespaces/orders/streams"

// rawPage is a list answer with its keys: the test checks which are present.
func rawPage(t *testing.T, c apiClient, path string) (Page[Stream], map[string]json.RawMessage) {
	t.Helper()
	var p Page[Stream]
	var keys map[string]json.RawMessage
	code, b := c.call("GET", path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	return p, keys
}

func streamNames(ss []Stream) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Stream
	}
	return out
}

// Paging through 2503 streams 1000 at a time, passing each page's next
// (escaped) as after, returns every stream exactly once and in byte order
// of its name, pages of 1000, 1000 and 503; next is the last item's name,
// and absent from the last page. No stream of a neighbouring namespace
// shows.
func TestListPageThroughStreams(t *testing.T) {
	_, hs, want := pagedStore(t, 2503)
	c := newClient(t, hs)
	var got []string
	var sizes []int
	after := ""
	for {
		path := ordersStreams + "?limit=1000"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		p, keys := rawPage(t, c, path)
		sizes = append(sizes, len(p.Items))
		got = append(got, streamNames(p.Items)...)
		if _, has := keys["next"]; !has {
			break
		}
		if p.Next == "" || p.Next != p.Items[len(p.Items)-1].Stream {
			t.Fatalf("next %q; want the page's last name %q", p.Next, p.Items[len(p.Items)-1].Stream)
		}
		if len(sizes) > 3 {
			t.Fatalf("more than 3 pages of 1000 for 2503 streams: sizes %v", sizes)
		}
		after = p.Next
	}
	if !slices.Equal(sizes, []int{1000, 1000, 503}) {
		t.Fatalf("page sizes %v; want [1000 1000 503]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged names differ from the %d streams in byte order (got %d; first difference at %d)", len(want), len(got), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// ?after= takes a name that needs URL escaping and returns the streams
// strictly after it; a name that is not a stream returns those sorting
// after it; after the last name, an empty page without next. A limit
// that ends the list exactly gives no next either.
func TestListPageAfterEscapedName(t *testing.T) {
	_, hs, names := pagedStore(t, len(oddNames)+4)
	c := newClient(t, hs)
	for _, after := range oddNames {
		i, _ := slices.BinarySearch(names, after)
		p, keys := rawPage(t, c, ordersStreams+"?limit=3&after="+url.QueryEscape(after))
		want := names[i+1 : min(i+4, len(names))]
		if got := streamNames(p.Items); !slices.Equal(got, want) {
			t.Fatalf("after %q: %q; want %q", after, got, want)
		}
		if _, has := keys["next"]; has != (i+4 < len(names)) {
			t.Fatalf("after %q: next present %v with %d names after it", after, has, len(names)-i-1)
		}
	}
	// Not a stream's name (a space is '+' escaped): the streams that
	// sort after it.
	p, _ := rawPage(t, c, ordersStreams+"?after="+url.QueryEscape("s-00001 "))
	i, _ := slices.BinarySearch(names, "s-00002")
	if got := streamNames(p.Items); !slices.Equal(got, names[i:]) || got[0] != "s-00002" {
		t.Fatalf("after a name between streams: %q; want %q", got, names[i:])
	}
	p, keys := rawPage(t, c, ordersStreams+"?limit=5&after="+url.QueryEscape(names[len(names)-1]))
	if _, has := keys["next"]; len(p.Items) != 0 || has {
		t.Fatalf("after the last name: %+v", p)
	}
	p, keys = rawPage(t, c, ordersStreams+"?limit=4&after="+url.QueryEscape(names[len(names)-5]))
	if _, has := keys["next"]; len(p.Items) != 4 || has {
		t.Fatalf("a page ending the list exactly: %d items, next present %v", len(p.Items), has)
	}
}

// Without paging parameters (or with limit 0 or empty) a list answers the
// reference's shape: one key, "items", with every object; the tenants,
// namespaces and caches lists page too.
func TestListWithoutParamsIsTheReferenceShape(t *testing.T) {
	st, hs, names := pagedStore(t, 1200)
	c := newClient(t, hs)
	for _, q := range []string{"", "?limit=0", "?limit=", "?other=1"} {
		p, keys := rawPage(t, c, ordersStreams+q)
		if len(keys) != 1 || keys["items"] == nil {
			t.Fatalf("GET streams%s: keys %v; want only items", q, slices.Collect(maps.Keys(keys)))
		}
		if got := streamNames(p.Items); !slices.Equal(got, names) {
			t.Fatalf("GET streams%s: %d items; want all %d in order", q, len(got), len(names))
		}
	}
	for _, cache := range []string{"b", "a", "c"} {
		if _, err := st.CreateCache(Cache{TenantID: "acme", Namespace: "orders", Cache: cache}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateTenant(Tenant{TenantID: "beta"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/tenants":                                        `{"items":[{"tenant_id":"acme","display_name":""},{"tenant_id":"beta","display_name":""}]}`,
		"/v1/tenants?limit=1":                                `{"items":[{"tenant_id":"acme","display_name":""}],"next":"acme"}`,
		"/v1/tenants?limit=1&after=acme":                     `{"items":[{"tenant_id":"beta","display_name":""}]}`,
		"/v1/tenants/acme/namespaces?limit=2":                `{"items":[{"tenant_id":"acme","namespace":"order","display_name":""},{"tenant_id":"acme","namespace":"orders","display_name":""}],"next":"orders"}`,
		"/v1/tenants/acme/namespaces?limit=2&after=orders":   `{"items":[{"tenant_id":"acme","namespace":"orders0","display_name":""}]}`,
		"/v1/tenants/acme/namespaces/orders/caches?limit=2":  `{"items":[{"tenant_id":"acme","namespace":"orders","cache":"a","display_name":"","capacity_bytes":0,"durable":false},{"tenant_id":"acme","namespace":"orders","cache":"b","display_name":"","capacity_bytes":0,"durable":false}],"next":"b"}`,
		"/v1/tenants/acme/namespaces/orders/caches?after=b":  `{"items":[{"tenant_id":"acme","namespace":"orders","cache":"c","display_name":"","capacity_bytes":0,"durable":false}]}`,
		"/v1/tenants/acme/namespaces/orders0/caches":         `{"items":[]}`,
		"/v1/tenants/acme/namespaces/orders0/caches?limit=1": `{"items":[]}`,
	} {
		code, b := c.call("GET", path, nil)
		if code != http.StatusOK || strings.TrimSpace(string(b)) != want {
			t.Errorf("GET %s: %d %s\nwant %s", path, code, b, want)
		}
	}
	// The missing parent is still 404, paged or not.
	c.wantError("GET", "/v1/tenants/acme/namespaces/nope/streams?limit=10", nil, http.StatusNotFound, codeNotFound)
	c.wantError("GET", "/v1/tenants/nope/namespaces?limit=10", nil, http.StatusNotFound, codeNotFound)
}

// A limit out of 0..1000, not an integer, or given twice, and a query
// that does not parse, are 400 validation_error naming the parameter, on
// every list.
func TestListPageInvalidLimit(t *testing.T) {
	_, hs, _ := pagedStore(t, 3)
	c := newClient(t, hs)
	lists := []string{"/v1/tenants", "/v1/tenants/acme/namespaces", ordersStreams, "/v1/tenants/acme/namespaces/orders/caches"}
	for _, list := range lists {
		for q, field := range map[string]string{
			"limit=1001": "limit", "limit=-1": "limit", "limit=abc": "limit", "limit=1.5": "limit",
			"limit=99999999999999999999": "limit", "limit=1&limit=2": "limit",
			"after=a&after=b": "after", "after=%zz": "query",
		} {
			eb := c.wantError("GET", list+"?"+q, nil, http.StatusBadRequest, codeValidation)
			if !strings.HasPrefix(eb.Message, "invalid "+field+":") {
				t.Errorf("GET %s?%s: message %q does not name %s", list, q, eb.Message, field)
			}
		}
		c.must("GET", list+"?limit=1000", nil, http.StatusOK, nil)
		c.must("GET", list+"?limit=1", nil, http.StatusOK, nil)
	}
}

// countingAPI serves st and records the query of every list request.
func countingAPI(t *testing.T, st *Store) (*httptest.Server, func() []string) {
	t.Helper()
	srv, err := NewServer(Options{Store: st, AdminToken: testToken, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var queries []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(queries)
	}
}

// The Client's iterator follows next page by page: 2503 streams in pages
// of 1000 are three requests and every stream once, in order; breaking
// off stops the requests; an error (a missing namespace) is yielded once.
// StreamsPage reads one page; Streams stays one unpaged request.
func TestClientListPages(t *testing.T) {
	st, _, want := pagedStore(t, 2503)
	hs, queries := countingAPI(t, st)
	c := NewClient(hs.URL, testToken, nil)
	ctx := context.Background()
	ns := NamespaceKey{"acme", "orders"}

	var got []string
	for s, err := range c.AllStreams(ctx, ns, 1000) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.Stream)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("AllStreams: %d names, first difference at %d; want the %d in order", len(got), firstDiff(got, want), len(want))
	}
	q := queries()
	if len(q) != 3 || q[0] != "limit=1000" || q[1] != "after="+url.QueryEscape(want[999])+"&limit=1000" || q[2] != "after="+url.QueryEscape(want[1999])+"&limit=1000" {
		t.Fatalf("AllStreams asked %q; want 3 pages of 1000 after the 1000th and 2000th names", q)
	}

	// Stopping early reads no further page; a page size past the cap is
	// the cap, 0 the default.
	n := 0
	for _, err := range c.AllStreams(ctx, ns, 5000) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 10 {
			break
		}
	}
	if q := queries()[3:]; len(q) != 1 || q[0] != "limit=1000" {
		t.Fatalf("break after 10 items asked %q; want one page of 1000", q)
	}
	for range c.AllStreams(ctx, ns, 0) {
		break
	}
	if q := queries()[4:]; len(q) != 1 || q[0] != fmt.Sprintf("limit=%d", DefaultPageSize) {
		t.Fatalf("page size 0 asked %q", q)
	}

	var errs []error
	for _, err := range c.AllStreams(ctx, NamespaceKey{"acme", "nope"}, 10) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrNotFound) {
		t.Fatalf("AllStreams of a missing namespace yielded %v; want one ErrNotFound", errs)
	}

	p, err := c.StreamsPage(ctx, ns, ListOptions{Limit: 2, After: "a+b"})
	if err != nil || !slices.Equal(streamNames(p.Items), want[slices.Index(want, "a+b")+1:][:2]) || p.Next != p.Items[1].Stream {
		t.Fatalf("StreamsPage after a+b = %+v, %v", p, err)
	}
	all, err := c.Streams(ctx, ns)
	if err != nil || len(all) != len(want) {
		t.Fatalf("Streams = %d, %v; want all %d", len(all), err, len(want))
	}
	if q := queries(); q[len(q)-1] != "" {
		t.Fatalf("Streams asked %q; want no parameters", q[len(q)-1])
	}

	// The other lists' iterators.
	if _, err := st.CreateCache(Cache{TenantID: "acme", Namespace: "orders", Cache: "c1"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for tn, err := range c.AllTenants(ctx, 1) {
		names = append(names, fmt.Sprint(tn.TenantID, err))
	}
	for n, err := range c.AllNamespaces(ctx, "acme", 1) {
		names = append(names, fmt.Sprint(n.Namespace, err))
	}
	for cc, err := range c.AllCaches(ctx, ns, 1) {
		names = append(names, fmt.Sprint(cc.Cache, err))
	}
	if want := []string{"acme<nil>", "order<nil>", "orders<nil>", "orders0<nil>", "c1<nil>"}; !slices.Equal(names, want) {
		t.Fatalf("AllTenants, AllNamespaces, AllCaches yielded %q; want %q", names, want)
	}
}

// Against a server that does not page (the reference answers every item
// and no next) the iterator yields everything once; against one whose
// next does not move forward it stops with an error instead of looping.
func TestClientListPagesOtherServers(t *testing.T) {
	ctx := context.Background()
	reference := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"items":[{"tenant_id":"a"},{"tenant_id":"b"},{"tenant_id":"c"}]}`)
	}))
	defer reference.Close()
	var got []string
	for tn, err := range NewClient(reference.URL, testToken, nil).AllTenants(ctx, 2) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tn.TenantID)
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("against a server without paging: %q", got)
	}

	var calls atomic.Int32
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, `{"items":[{"tenant_id":"a"}],"next":"a"}`)
	}))
	defer stuck.Close()
	var errs int
	for _, err := range NewClient(stuck.URL, testToken, nil).AllTenants(ctx, 1) {
		if err != nil {
			errs++
			if !strings.Contains(err.Error(), "not moving forward") {
				t.Fatalf("error %v", err)
			}
		}
	}
	if errs != 1 || calls.Load() != 2 {
		t.Fatalf("against a next that repeats: %d errors after %d calls; want 1 after 2", errs, calls.Load())
	}
}
