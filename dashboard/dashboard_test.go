package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The page, its script and stylesheet are served with a same-origin-only
// content security policy.
func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for path, ctype := range map[string]string{"/": "text/html", "/app.js": "javascript", "/app.css": "text/css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s: %d, %d bytes", path, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); !strings.Contains(got, ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, got, ctype)
		}
		if got := resp.Header.Get("Content-Security-Policy"); cspDirectives(got)["default-src"] != "'self'" {
			t.Errorf("GET %s: Content-Security-Policy %q", path, got)
		}
	}
}

// Every list of the overview (package metrics' Overview) has its table
// in the page and its row definition in the script.
func TestEveryListHasATable(t *testing.T) {
	page, err := fs.ReadFile(static, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.ReadFile(static, "static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range []string{"streams", "subscribers", "groups", "caches", "services"} {
		if !strings.Contains(string(page), `<table id="`+list+`">`) {
			t.Errorf("index.html has no table %q", list)
		}
		if !strings.Contains(string(script), "\n  "+list+": {") {
			t.Errorf("app.js does not render %q", list)
		}
	}
}

// cspDirectives splits a Content-Security-Policy into its directives, by
// name.
func cspDirectives(policy string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			out[name] = strings.TrimSpace(value)
		}
	}
	return out
}

// The page could be framed by any site (frame-ancestors does not fall
// back to default-src), so a page of its buttons and tables could be laid
// under another site's: every answer, a missing file's too, now forbids
// framing in both headers browsers read, keeps the same-origin policy,
// and is not sniffed.
func TestHandlerRefusesFraming(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/index.html", "/app.js", "/app.css", "/missing"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := cspDirectives(resp.Header.Get("Content-Security-Policy"))
		if csp["frame-ancestors"] != "'none'" || csp["default-src"] != "'self'" {
			t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'self' and frame-ancestors 'none'", path, resp.Header.Get("Content-Security-Policy"))
		}
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("GET %s: X-Frame-Options %q, want DENY", path, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", path, got)
		}
	}
}
