package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/felixmq/felix/internal/httpx"
)

// Defaults of Options.
const (
	DefaultRegionID     = "local"
	DefaultChangesLimit = 1000
	DefaultMaxBodyBytes = 1 << 20
	// DefaultBackupWriteTimeout is Options.BackupWriteTimeout's default.
	DefaultBackupWriteTimeout = time.Minute
)

// Options configure the HTTP API. Store is required; every other field's
// zero value is safe.
type Options struct {
	// Store holds the metadata. Required.
	Store *Store
	// AdminToken is the static admin credential, compared in constant
	// time and always accepted. Default "": none.
	AdminToken string
	// Authorize decides admin requests whose bearer token is not
	// AdminToken (e.g. Felix tokens with the admin permission). tenant is
	// the path's {tenant_id}, or "" on cluster-wide routes (tenants list,
	// create and delete, snapshot, changes, backup, system info, regions):
	// deleting a tenant is cluster-wide, as creating one is. It runs only
	// when the request carries "Authorization: Bearer <token>" (without
	// one the answer is 401); an error wrapping ErrUnauthorized is
	// answered 401, any other error 403. Default nil: only AdminToken is
	// accepted (with neither set, every admin request is refused with 401).
	Authorize func(r *http.Request, tenant string) error
	// Mount adds handlers by ServeMux pattern (e.g. "POST
	// /v1/tenants/{tenant}/token/exchange"). They are NOT behind the
	// admin check: each authenticates its own requests. Default none.
	Mount map[string]http.Handler
	// RegionID is reported by /v1/system/info and /v1/regions. Default
	// "local".
	RegionID string
	// ChangesLimit is the largest (and default) page of /v1/changes.
	// Default 1000.
	ChangesLimit int
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// BackupWriteTimeout bounds each write of a backup's answer (GET
	// /v1/admin/backup/store): a client that reads nothing for that long
	// is dropped. The backup holds a read transaction of the store while
	// it is sent, during which writes that grow the file wait and Close
	// waits. Default DefaultBackupWriteTimeout (1 minute).
	BackupWriteTimeout time.Duration
	// Logger receives internal errors. Default: slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.RegionID == "" {
		o.RegionID = DefaultRegionID
	}
	if o.ChangesLimit <= 0 {
		o.ChangesLimit = DefaultChangesLimit
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.BackupWriteTimeout <= 0 {
		o.BackupWriteTimeout = DefaultBackupWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Server is the control plane's HTTP API under /v1. It is an http.Handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// Error codes of the error body.
const (
	codeNotFound     = "not_found"
	codeExists       = "already_exists"
	codeConflict     = "conflict"
	codeValidation   = "validation_error"
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeResync       = "resync_required"
	codeLimit        = "limit_exceeded"
	// codeTooLarge answers a request body over Options.MaxBodyBytes (413).
	codeTooLarge = "too_large"
	// codeMethodNotAllowed answers a method no route of the path takes.
	codeMethodNotAllowed = "method_not_allowed"
	codeInternal         = "internal"
)

// errorBody is the reference's error shape.
type errorBody struct {
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	RequestID *string `json:"request_id"`
}

// route is one entry of the API; the OpenAPI test walks this table. h
// serves a request; a returned error becomes the error body.
type route struct {
	method, path string
	public       bool // no admin credential needed
	// cluster, when set, is what a route whose path names a tenant does
	// that needs the cluster-wide admin permission ("deleting a tenant"):
	// Authorize is asked with tenant "", as on the cluster-wide routes.
	cluster string
	h       func(s *Server, w http.ResponseWriter, r *http.Request) error
}

// NewServer builds the API. It fails if Store is nil or a Mount pattern is
// invalid or collides with an API route.
func NewServer(opts Options) (srv *Server, err error) {
	if opts.Store == nil {
		return nil, errors.New("controlplane: Options.Store is nil")
	}
	opts = opts.withDefaults()
	s := &Server{opts: opts, mux: http.NewServeMux()}
	for _, rt := range routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	defer func() {
		if p := recover(); p != nil { // ServeMux panics on bad or colliding patterns
			srv, err = nil, fmt.Errorf("controlplane: Options.Mount: %v", p)
		}
	}()
	for pattern, h := range opts.Mount {
		s.mux.Handle(pattern, h)
	}
	return s, nil
}

// ServeHTTP serves the API. A request no route serves gets the JSON error
// body too: 404 not_found, or 405 method_not_allowed with Allow.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		w = &unrouted{ResponseWriter: w, r: r}
	}
	s.mux.ServeHTTP(w, r)
}

// unrouted turns the ServeMux's plain-text 404 and 405 answers into the
// API's JSON error body; other answers (redirects) pass through.
type unrouted struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (u *unrouted) WriteHeader(code int) {
	var name, msg string
	switch code {
	case http.StatusNotFound:
		name, msg = codeNotFound, fmt.Sprintf("no route %s", u.r.URL.Path)
	case http.StatusMethodNotAllowed:
		name, msg = codeMethodNotAllowed, fmt.Sprintf("%s not allowed on %s (allowed: %s)", u.r.Method, u.r.URL.Path, u.Header().Get("Allow"))
	default:
		u.ResponseWriter.WriteHeader(code)
		return
	}
	u.replaced = true
	u.Header().Del("X-Content-Type-Options")
	httpx.WriteJSON(u.ResponseWriter, code, errorBody{Code: name, Message: msg})
}

func (u *unrouted) Write(b []byte) (int, error) {
	if u.replaced {
		return len(b), nil // the mux's plain-text body
	}
	return u.ResponseWriter.Write(b)
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.public {
			if err := s.authorizeRoute(rt, r); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		if err := rt.h(s, w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// status maps an error to its HTTP status and code.
func status(err error) (int, string) {
	var ex *ExistsError
	switch {
	case errors.Is(err, ErrValidation):
		return http.StatusBadRequest, codeValidation
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, codeUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, codeForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, codeNotFound
	case errors.As(err, &ex):
		if ex.Kind == ObjectStream || ex.Kind == ObjectCache {
			return http.StatusConflict, codeConflict // the reference's codes
		}
		return http.StatusConflict, codeExists
	case errors.Is(err, ErrResyncRequired):
		return http.StatusGone, codeResync
	case errors.Is(err, ErrLimit):
		return http.StatusConflict, codeLimit
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, codeTooLarge
	}
	return http.StatusInternalServerError, codeInternal
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, name := status(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.opts.Logger.Error("control plane request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="felix-controlplane"`)
	}
	httpx.WriteJSON(w, code, errorBody{Code: name, Message: msg})
}

// pathMatch checks that a body field naming the object's parent, when
// present, agrees with the path.
func pathMatch(field, body, path string) (string, error) {
	if body != "" && body != path {
		return "", &ValidationError{Field: field, Message: fmt.Sprintf("%q does not match the path's %q", body, path)}
	}
	return path, nil
}
