package metrics

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/felixmq/felix/dashboard"
)

// DefaultAddr is the default listen address of the metrics server.
const DefaultAddr = "127.0.0.1:8080"

// The server's connection bounds (variables for tests): readHeaderTimeout
// bounds how long a client may take to send headers, readTimeout a whole
// request, and idleTimeout how long a keep-alive connection may stay
// idle (a dashboard left open asks every second). No write timeout: a
// scrape of many series is long, and the client reads it.
var (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Options configure a Server. The zero value serves nothing but the
// process and Go runtime metrics on DefaultAddr.
type Options struct {
	// Addr is the TCP listen address. Default "127.0.0.1:8080"; port 0
	// picks a free port (see Server.Addr).
	Addr string
	// Sources are read at every scrape and dashboard refresh.
	Sources Sources
	// Logger receives start, stop and serving errors. Default
	// slog.Default().
	Logger *slog.Logger
	// Clock gives the time for uptime and rates. Default time.Now.
	Clock func() time.Time
	// TLS, when set, serves everything over HTTPS with it (felix serve
	// --metrics-tls: the broker's certificate). Default nil: plain HTTP.
	TLS *tls.Config
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// status is the readiness state answered by /ready.
type status int32

const (
	statusStarting status = iota // 503 starting: recovery not done
	statusReady                  // 200 ok
	statusDraining               // 503 draining: shutting down (final)
)

func (s status) String() string {
	switch s {
	case statusReady:
		return "ready"
	case statusDraining:
		return "draining"
	}
	return "starting"
}

// Server serves /metrics (Prometheus text format), /live, /ready,
// /api/overview and the dashboard at / over plain HTTP.
type Server struct {
	opts     Options
	registry *prometheus.Registry
	handler  http.Handler
	started  time.Time
	state    atomic.Int32 // a status
	rates    rates

	mu   sync.Mutex
	http *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returns
}

// New returns a server that is not yet listening, not ready (/ready
// answers 503 starting until SetReady(true)). Its registry holds the Go
// runtime and process collectors, the Felix collector reading
// opts.Sources, and opts.Sources.Sync.
func New(opts Options) *Server {
	s := &Server{opts: opts.withDefaults(), registry: prometheus.NewRegistry()}
	s.started = s.opts.Clock()
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{src: &s.opts.Sources},
	)
	if h := s.opts.Sources.Sync; h != nil {
		s.registry.MustRegister(h.h)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { plain(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /api/overview", s.serveOverview)
	mux.Handle("GET /", dashboard.Handler())
	s.handler = nosniff(mux)
	return s
}

// nosniff sets X-Content-Type-Options: nosniff on every answer of h, so
// that no browser takes a scrape, a probe's answer or the overview for
// another type than the one it is sent as.
func nosniff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// Registry is the server's registry, for registering more collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handler serves every endpoint; Start serves it on Options.Addr.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady marks the broker ready (recovery done) or not. It has no effect
// once SetDraining was called.
func (s *Server) SetReady(ready bool) {
	next := statusStarting
	if ready {
		next = statusReady
	}
	for {
		cur := s.state.Load()
		if status(cur) == statusDraining || s.state.CompareAndSwap(cur, int32(next)) {
			return
		}
	}
}

// SetDraining makes /ready answer 503 draining for good: the broker is
// shutting down.
func (s *Server) SetDraining() { s.state.Store(int32(statusDraining)) }

func (s *Server) status() status { return status(s.state.Load()) }

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	switch st := s.status(); st {
	case statusReady:
		plain(w, http.StatusOK, "ok")
	default:
		plain(w, http.StatusServiceUnavailable, st.String())
	}
}

// serveOverview answers /api/overview with the dashboard's security
// headers: the data of the page must not be framed either.
func (s *Server) serveOverview(w http.ResponseWriter, _ *http.Request) {
	dashboard.SetSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(s.overview()); err != nil {
		s.opts.Logger.Debug("metrics: writing overview", "err", err)
	}
}

// Start listens on Options.Addr and serves in the background until
// Shutdown.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("metrics: server already started")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("metrics: listen %s: %w", s.opts.Addr, err)
	}
	scheme := "http"
	if s.opts.TLS != nil {
		ln, scheme = tls.NewListener(ln, s.opts.TLS), "https"
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.opts.Logger.Info("metrics listening", "addr", ln.Addr().String(), "scheme", scheme,
		"endpoints", "/metrics /live /ready /api/overview /")
	return nil
}

// Addr is the bound address after Start, nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown marks the server draining, stops accepting and waits (until
// ctx ends) for requests in progress. It is a no-op if not started.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetDraining()
	s.mu.Lock()
	hs, done := s.http, s.done
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	err := hs.Shutdown(ctx)
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}
