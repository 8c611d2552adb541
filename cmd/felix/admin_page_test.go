package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/felixmq/felix/controlplane"
)

// `felix admin stream ls` against a broker whose control plane declares
// 1003 streams (names needing URL escapes among them) reads them in pages
// of 500 (three requests, each after the previous page's last name) and
// prints each stream once, in the list's order, in the table of before;
// --limit N prints the first N and reads no page past them; --json prints
// the one array of before, byte for byte.
func TestAdminListPages(t *testing.T) {
	dir := t.TempDir()
	names := []string{"100%", "a?b#c", "x&y=z", "a+b", "😀"}
	for i := len(names); i < 1003; i++ {
		names = append(names, fmt.Sprintf("s-%04d", i))
	}
	// Declared in the store before the broker starts: it loads them all
	// from its snapshot.
	st, err := controlplane.Open(filepath.Join(dir, controlplane.FileName), controlplane.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTenant(controlplane.Tenant{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateNamespace(controlplane.Namespace{TenantID: "acme", Namespace: "shop"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := st.CreateStream(controlplane.Stream{TenantID: "acme", Namespace: "shop", Stream: n}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"sessions", "carts", "a-much-longer-cache-name"} {
		if _, err := st.CreateCache(controlplane.Cache{TenantID: "acme", Namespace: "shop", Cache: n, CapacityBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	ab := startAdminBrokerDir(t, dir)

	// A proxy in front of the control plane records the list requests.
	target, err := url.Parse(ab.cp.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var queries []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	ls := func(args ...string) (string, []string) {
		t.Helper()
		mu.Lock()
		queries = nil
		mu.Unlock()
		args = append([]string{"admin", "stream", "ls", "--tenant", "acme", "-n", "shop", "--controlplane-url", hs.URL, "--data-dir", ab.dir}, args...)
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("felix %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		mu.Lock()
		defer mu.Unlock()
		return out, slices.Clone(queries)
	}
	pageAfter := func(name string, limit int) string {
		return url.Values{"after": {name}, "limit": {fmt.Sprint(limit)}}.Encode()
	}
	rowNames := func(out string) []string {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"STREAM", "STORAGE", "RETENTION"}) {
			t.Fatalf("first line %q; want the header", lines[0])
		}
		var got []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) != 3 || f[1] != "memory" || f[2] != "none" {
				t.Fatalf("row %q", l)
			}
			got = append(got, f[0])
		}
		return got
	}

	out, q := ls()
	if got := rowNames(out); !slices.Equal(got, names) {
		t.Fatalf("stream ls printed %d streams (first difference at %d); want the %d in order", len(got), firstDifference(got, names), len(names))
	}
	if want := []string{"limit=500", pageAfter(names[499], 500), pageAfter(names[999], 500)}; !slices.Equal(q, want) {
		t.Fatalf("stream ls asked %q; want %q", q, want)
	}

	out, q = ls("--limit", "600")
	if got := rowNames(out); !slices.Equal(got, names[:600]) {
		t.Fatalf("stream ls --limit 600 printed %d streams; want the first 600", len(got))
	}
	if want := []string{"limit=500", pageAfter(names[499], 500)}; !slices.Equal(q, want) {
		t.Fatalf("stream ls --limit 600 asked %q; want %q", q, want)
	}
	out, q = ls("--limit", "3")
	if got := rowNames(out); !slices.Equal(got, names[:3]) || !slices.Equal(q, []string{"limit=3"}) {
		t.Fatalf("stream ls --limit 3 printed %q after asking %q", got, q)
	}
	if _, err := ab.run("stream", "ls", "--limit", "-1"); err == nil || !strings.Contains(err.Error(), "--limit") {
		t.Fatalf("--limit -1: %v", err)
	}

	// --json: the array the whole list encodes to, as before paging.
	c := controlplane.NewClient(ab.cp.base, ab.cp.admin, nil)
	all, err := c.Streams(context.Background(), controlplane.NamespaceKey{TenantID: "acme", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetIndent("", "  ")
	if err := enc.Encode(all); err != nil {
		t.Fatal(err)
	}
	out, q = ls("--json")
	if out != want.String() || len(q) != 3 {
		t.Fatalf("stream ls --json (%d requests) differs from the list encoded at once (%d bytes vs %d)", len(q), len(out), want.Len())
	}
	out, _ = ls("--json", "--limit", "2")
	var two []controlplane.Stream
	if err := json.Unmarshal([]byte(out), &two); err != nil || len(two) != 2 || two[0].Stream != names[0] || two[1].Stream != names[1] {
		t.Fatalf("stream ls --json --limit 2 printed %q (%v)", out, err)
	}

	// A one-page list prints the table of before.
	caches, err := c.Caches(context.Background(), controlplane.NamespaceKey{TenantID: "acme", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, cc := range caches {
		rows = append(rows, cacheLine(cc))
	}
	var tbl bytes.Buffer
	if err := table(&tbl, "CACHE\tSTORAGE\tCAPACITY BYTES\tDISPLAY NAME", rows); err != nil {
		t.Fatal(err)
	}
	if out := ab.must("cache", "ls", "--tenant", "acme", "-n", "shop"); out != tbl.String() {
		t.Fatalf("cache ls printed\n%s\nwant\n%s", out, tbl.String())
	}
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
