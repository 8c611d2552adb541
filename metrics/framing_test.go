package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The dashboard and the API it reads could be framed by any site, and
// /api/overview and the plain-text endpoints were answered without
// nosniff. The page and /api/overview now forbid framing (CSP
// frame-ancestors 'none', X-Frame-Options DENY), and every endpoint says
// nosniff.
func TestDashboardAndAPIRefuseFraming(t *testing.T) {
	s := startServer(t, Options{})
	s.SetReady(true)
	for _, path := range []string{"/", "/app.js", "/api/overview", "/metrics", "/live", "/ready", "/missing"} {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", path, got)
		}
		if path == "/metrics" || path == "/live" || path == "/ready" {
			continue // read by scrapers and probes, never framed
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want frame-ancestors 'none'", path, csp)
		}
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("GET %s: X-Frame-Options %q, want DENY", path, got)
		}
	}
}
