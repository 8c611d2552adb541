package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/controlplane"
)

// `felix admin` with names the API's paths must escape, against a real
// broker's embedded control plane: "." and "..", unicode, '%', '?' and
// '#' name their own objects (before the fix, `stream rm ..` printed
// "deleted" and deleted nothing: the path cleaning redirected it to the
// namespace as a GET; `stream info ..` printed the namespace); the
// namespace is declared on the way; `ls --json` of nothing is [].
func TestHunt10AdminNamesNeedingEscapes(t *testing.T) {
	ab := startAdminBroker(t)
	admin, must := ab.run, ab.must
	for _, scope := range [][2]string{{"..", "."}, {"ünï", "日本"}} {
		in := []string{"--tenant", scope[0], "-n", scope[1]}
		must("tenant", "add", scope[0])
		must("namespace", "add", scope[1], "--tenant", scope[0])
		if out := must(append([]string{"stream", "ls", "--json"}, in...)...); strings.TrimSpace(out) != "[]" {
			t.Fatalf("stream ls --json of a namespace without streams printed %q; want []", out)
		}
		for _, name := range []string{"..", ".", "100%", "a?b#c", "😀"} {
			out := must(append([]string{"stream", "add", name}, in...)...)
			want := "created stream " + scope[0] + "/" + scope[1] + "/" + name
			if !strings.Contains(out, want) {
				t.Fatalf("stream add %q printed %q; want %q", name, out, want)
			}
			var s controlplane.Stream
			if err := json.Unmarshal([]byte(must(append([]string{"stream", "info", name}, in...)...)), &s); err != nil || s.Stream != name || s.Namespace != scope[1] || s.TenantID != scope[0] {
				t.Fatalf("stream info %q = %+v, %v", name, s, err)
			}
			must(append([]string{"stream", "edit", name, "--retention-bytes", "4096"}, in...)...)
			must(append([]string{"cache", "add", name, "--capacity-bytes", "1024"}, in...)...)
			must(append([]string{"cache", "edit", name, "--capacity-bytes", "2048"}, in...)...)
		}
		var ss []controlplane.Stream
		if err := json.Unmarshal([]byte(must(append([]string{"stream", "ls", "--json"}, in...)...)), &ss); err != nil || len(ss) != 5 {
			t.Fatalf("stream ls --json = %+v, %v; want the 5 streams", ss, err)
		}
		for _, s := range ss {
			if s.Retention.MaxSizeBytes == nil || *s.Retention.MaxSizeBytes != 4096 {
				t.Fatalf("stream %q after its edit: %+v", s.Stream, s.Retention)
			}
		}
		for _, name := range []string{"..", ".", "100%", "a?b#c", "😀"} {
			must(append([]string{"stream", "rm", name}, in...)...)
			if _, err := admin(append([]string{"stream", "info", name}, in...)...); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Fatalf("stream info %q after its rm: %v; want not found", name, err)
			}
			if _, err := admin(append([]string{"stream", "rm", name}, in...)...); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Fatalf("second stream rm %q: %v; want not found", name, err)
			}
			must(append([]string{"cache", "rm", name}, in...)...)
		}
		must("namespace", "rm", scope[1], "--tenant", scope[0])
		must("tenant", "rm", scope[0])
		if _, err := admin("tenant", "rm", scope[0]); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("second tenant rm %q: %v; want not found", scope[0], err)
		}
	}
	if out := must("tenant", "ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("tenant ls --json with no tenant printed %q; want []", out)
	}
}

// `felix admin` against an API that misbehaves: an answer that never
// comes gives up after --timeout; a proxy's HTML error page is reported
// with its status, cut short; a proxy redirecting a write elsewhere is
// an error, not "created".
func TestHunt10AdminMisbehavingAPI(t *testing.T) {
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/hang/"):
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case strings.HasPrefix(r.URL.Path, "/html/"):
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>\n<h1>502 Bad Gateway</h1>\n" + strings.Repeat("<p>upstream</p>\n", 100000) + "</html>"))
		case strings.HasPrefix(r.URL.Path, "/moved/"):
			http.Redirect(w, r, "/elsewhere/v1/tenants", http.StatusMovedPermanently)
		case r.URL.Path == "/elsewhere/v1/tenants":
			w.Write([]byte(`{"items":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	defer close(release)
	admin := func(base string, args ...string) (string, error) {
		return runCLI(t, append(append([]string{"admin"}, args...), "--controlplane-url", base, "--controlplane-token", "tok")...)
	}
	start := time.Now()
	if _, err := admin(hs.URL+"/hang", "tenant", "ls", "--timeout", "200ms"); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("hanging API: %v; want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("hanging API: gave up after %v", d)
	}
	_, err := admin(hs.URL+"/html", "tenant", "ls")
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "Bad Gateway") || len(err.Error()) > 2048 || strings.Contains(err.Error(), "\n") {
		t.Fatalf("HTML error page: %d bytes: %.300v", len(err.Error()), err)
	}
	out, err := admin(hs.URL+"/moved", "tenant", "add", "acme")
	if err == nil || strings.Contains(out, "created") || !strings.Contains(err.Error(), "301") {
		t.Fatalf("tenant add redirected to a GET: %v\n%s", err, out)
	}
}

// --timeout above the HTTP client's default (10 s; 200 ms here) is the
// bound: before the fix an answer taking longer than the default failed
// whatever --timeout said.
func TestHunt10AdminTimeoutAboveTheDefault(t *testing.T) {
	defer func(d time.Duration) { httpFetchTimeout = d }(httpFetchTimeout)
	httpFetchTimeout = 200 * time.Millisecond
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(600 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte(`{"items":[{"tenant_id":"acme"}]}`))
	}))
	defer hs.Close()
	out, err := runCLI(t, "admin", "tenant", "ls", "--controlplane-url", hs.URL, "--controlplane-token", "tok", "--timeout", "30s")
	if err != nil || !strings.Contains(out, "acme") {
		t.Fatalf("tenant ls answered in 600 ms with --timeout 30s over a 200 ms default: %v\n%s", err, out)
	}
}
