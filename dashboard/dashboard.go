package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy of every answer of Handler: the
// page loads only its own script, stylesheet and API, and no page may
// frame it (frame-ancestors does not fall back to default-src, so it is
// named).
const ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'"

// SetSecurityHeaders sets the headers of every dashboard answer on h:
// ContentSecurityPolicy, X-Frame-Options DENY (for browsers that ignore
// frame-ancestors) and X-Content-Type-Options nosniff. Package metrics
// sets them on /api/overview too.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Handler serves the dashboard's files: index.html at /, app.js and
// app.css beside it, every answer with SetSecurityHeaders' headers.
func Handler() http.Handler {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
}
