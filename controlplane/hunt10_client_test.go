package controlplane

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Names are valid when they are "." or "..", or hold '%', '?', '#', '+',
// '&' or non-ASCII: every Client method reaches that object, never the
// route a cleaned or cut path names. Before the fix, DeleteStream of a
// stream named ".." reached the namespace route by a 301 redirect (Go's
// ServeMux cleans the path) that the HTTP client followed as a GET: it
// succeeded and deleted nothing, and Stream("..") answered the namespace.
func TestHunt10ClientOddNames(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	hs := startAPI(t, st)
	c := NewClient(hs.URL, testToken, nil)
	ctx := context.Background()

	names := []string{".", "..", "...", "%2e%2E", "a?b", "a#b", "a+b&c=d", "100%", "日本語", "émoji-😀", "a\\b", "a;b", "~x"}
	for _, tenant := range []string{".", ".."} {
		if _, err := c.CreateTenant(ctx, Tenant{TenantID: tenant}); err != nil {
			t.Fatalf("tenant %q: %v", tenant, err)
		}
	}
	for _, tenant := range []string{".", "..", "ünï"} {
		if tenant == "ünï" {
			if _, err := c.CreateTenant(ctx, Tenant{TenantID: tenant}); err != nil {
				t.Fatal(err)
			}
		}
		for _, ns := range []string{".", "..", "n?s"} {
			if _, err := c.CreateNamespace(ctx, Namespace{TenantID: tenant, Namespace: ns}); err != nil {
				t.Fatalf("namespace %q/%q: %v", tenant, ns, err)
			}
			nk := NamespaceKey{tenant, ns}
			for _, name := range names {
				if _, err := c.CreateStream(ctx, Stream{TenantID: tenant, Namespace: ns, Stream: name}); err != nil {
					t.Fatalf("stream %q/%q/%q: %v", tenant, ns, name, err)
				}
				if _, err := c.CreateCache(ctx, Cache{TenantID: tenant, Namespace: ns, Cache: name}); err != nil {
					t.Fatalf("cache %q/%q/%q: %v", tenant, ns, name, err)
				}
			}
			ss, err := c.Streams(ctx, nk)
			if err != nil || len(ss) != len(names) {
				t.Fatalf("Streams(%q/%q) = %d, %v; want %d", tenant, ns, len(ss), err, len(names))
			}
			for _, name := range names {
				sk := StreamKey{tenant, ns, name}
				s, err := c.Stream(ctx, sk)
				if err != nil || s.Key() != sk {
					t.Fatalf("Stream(%v) = %+v, %v", sk, s, err)
				}
				fs := FsyncNever
				if s, err := c.UpdateStream(ctx, sk, StreamPatch{Fsync: &fs}); err != nil || s.Key() != sk || s.Fsync != FsyncNever {
					t.Fatalf("UpdateStream(%v) = %+v, %v", sk, s, err)
				}
				ck := CacheKey{tenant, ns, name}
				if cc, err := c.Cache(ctx, ck); err != nil || cc.Key() != ck {
					t.Fatalf("Cache(%v) = %+v, %v", ck, cc, err)
				}
				capacity := int64(4096)
				if cc, err := c.UpdateCache(ctx, ck, CachePatch{CapacityBytes: &capacity}); err != nil || cc.Key() != ck || cc.CapacityBytes != capacity {
					t.Fatalf("UpdateCache(%v) = %+v, %v", ck, cc, err)
				}
			}
			// Deletes remove exactly that object, and a second delete is
			// not found rather than a success somewhere else.
			for _, name := range names {
				sk := StreamKey{tenant, ns, name}
				if err := c.DeleteStream(ctx, sk); err != nil {
					t.Fatalf("DeleteStream(%v): %v", sk, err)
				}
				if _, err := st.Stream(sk); !errors.Is(err, ErrNotFound) {
					t.Fatalf("stream %v still stored after its delete: %v", sk, err)
				}
				if err := c.DeleteStream(ctx, sk); !errors.Is(err, ErrNotFound) {
					t.Fatalf("second DeleteStream(%v): %v; want ErrNotFound", sk, err)
				}
				ck := CacheKey{tenant, ns, name}
				if err := c.DeleteCache(ctx, ck); err != nil {
					t.Fatalf("DeleteCache(%v): %v", ck, err)
				}
				if err := c.DeleteCache(ctx, ck); !errors.Is(err, ErrNotFound) {
					t.Fatalf("second DeleteCache(%v): %v; want ErrNotFound", ck, err)
				}
			}
			if err := c.DeleteNamespace(ctx, nk); err != nil {
				t.Fatalf("DeleteNamespace(%v): %v", nk, err)
			}
			if err := c.DeleteNamespace(ctx, nk); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second DeleteNamespace(%v): %v; want ErrNotFound", nk, err)
			}
		}
		if err := c.DeleteTenant(ctx, tenant); err != nil {
			t.Fatalf("DeleteTenant(%q): %v", tenant, err)
		}
		if err := c.DeleteTenant(ctx, tenant); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second DeleteTenant(%q): %v; want ErrNotFound", tenant, err)
		}
	}
	if ts, err := c.Tenants(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("tenants left: %+v, %v", ts, err)
	}
	// An empty name is no object: never a success on the list route.
	if _, err := c.CreateTenant(ctx, Tenant{TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTenant(ctx, ""); err == nil {
		t.Fatal("DeleteTenant(\"\") succeeded")
	}
	if _, err := c.Stream(ctx, StreamKey{"acme", "", ""}); err == nil {
		t.Fatal("Stream of empty names succeeded")
	}
	if ts, err := c.Tenants(ctx); err != nil || len(ts) != 1 {
		t.Fatalf("tenants after the empty-name calls: %+v, %v", ts, err)
	}
}

// A write answered by a redirect that would turn it into a GET (301, 302,
// 303: what a proxy sending http to https, or a path cleaning, answers)
// is an error naming the redirect, not a success decoded from whatever
// the GET returns; a redirect that keeps the method (307, 308) and a GET
// redirect are followed.
func TestHunt10ClientRedirects(t *testing.T) {
	var posts, gets atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /moved/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/tenants", http.StatusMovedPermanently)
	})
	mux.HandleFunc("POST /kept/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/tenants", http.StatusPermanentRedirect)
	})
	mux.HandleFunc("GET /moved/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/tenants", http.StatusFound)
	})
	mux.HandleFunc("DELETE /moved/v1/tenants/{t}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v1/tenants", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"tenant_id":"acme"}`))
	})
	mux.HandleFunc("GET /v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[{"tenant_id":"acme"}]}`))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	ctx := context.Background()

	_, err := NewClient(hs.URL+"/moved", testToken, nil).CreateTenant(ctx, Tenant{TenantID: "acme"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusMovedPermanently || !strings.Contains(err.Error(), "/v1/tenants") {
		t.Fatalf("POST answered 301: %v; want an *APIError with status 301 naming where it points", err)
	}
	if err := NewClient(hs.URL+"/moved", testToken, nil).DeleteTenant(ctx, "acme"); err == nil {
		t.Fatal("DELETE answered 303 succeeded")
	}
	if posts.Load() != 0 || gets.Load() != 0 {
		t.Fatalf("a refused redirect was followed: %d posts, %d gets", posts.Load(), gets.Load())
	}
	if tn, err := NewClient(hs.URL+"/kept", testToken, nil).CreateTenant(ctx, Tenant{TenantID: "acme"}); err != nil || tn.TenantID != "acme" || posts.Load() != 1 {
		t.Fatalf("POST answered 308: %+v, %v (%d posts); want it followed as a POST", tn, err, posts.Load())
	}
	if ts, err := NewClient(hs.URL+"/moved", testToken, nil).Tenants(ctx); err != nil || len(ts) != 1 || gets.Load() != 1 {
		t.Fatalf("GET answered 302: %+v, %v; want it followed", ts, err)
	}
	// The caller's http.Client is used, and not changed.
	hc := &http.Client{Timeout: time.Minute}
	if _, err := NewClient(hs.URL+"/moved", testToken, hc).CreateTenant(ctx, Tenant{TenantID: "acme"}); err == nil {
		t.Fatal("POST answered 301 through a given http.Client succeeded")
	}
	if hc.CheckRedirect != nil {
		t.Fatal("NewClient changed the caller's http.Client")
	}
}

// Answers that are not the API's: an error body that is not JSON is
// the message, cut to a readable length and without control characters;
// a success body that is not the object is a decode error; a body over
// the bound is refused; a server that hangs gives up with the context.
func TestHunt10ClientMisbehavingServer(t *testing.T) {
	huge := strings.Repeat("<p>proxy error</p>\n", 1<<16) // ~1.2 MiB
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/html/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(huge))
	})
	mux.HandleFunc("/ctl/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("boom\x1b[31m\r\nred"))
	})
	mux.HandleFunc("/garbage/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"tenant_id": 12`))
	})
	mux.HandleFunc("/big/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"items":[`))
		chunk := []byte(strings.Repeat(`{"tenant_id":"x"},`, 1024))
		for n := 0; n < int(maxSourceBody)+len(chunk); n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/hang/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer close(release)
	defer func(n int64) { maxSourceBody = n }(maxSourceBody)
	maxSourceBody = 1 << 20
	ctx := context.Background()

	_, err := NewClient(hs.URL+"/html", testToken, nil).Tenants(ctx)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || apiErr.Code != codeInternal {
		t.Fatalf("HTML 502: %v; want an *APIError 502", err)
	}
	if n := len(err.Error()); n > 4096 {
		t.Fatalf("HTML 502 error message of %d bytes; want it cut", n)
	}
	_, err = NewClient(hs.URL+"/ctl", testToken, nil).Tenants(ctx)
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || strings.ContainsAny(err.Error(), "\x1b\r\n") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("control characters in an error body: %q", err)
	}
	if _, err := NewClient(hs.URL+"/garbage", testToken, nil).CreateTenant(ctx, Tenant{TenantID: "x"}); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("truncated JSON: %v; want a decode error", err)
	}
	if _, err := NewClient(hs.URL+"/big", testToken, nil).Tenants(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("answer over the bound: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := NewClient(hs.URL+"/hang", testToken, nil).Tenants(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging server: %v; want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}
