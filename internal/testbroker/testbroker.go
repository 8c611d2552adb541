// Package testbroker starts a real Felix broker (engine + QUIC server on
// 127.0.0.1, ephemeral development certificate) for tests in any package.
package testbroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

// Broker is a running test broker.
type Broker struct {
	t         testing.TB
	cfg       config
	Addr      string         // host:port to dial
	ClientTLS *tls.Config    // trusts the broker's certificate
	Broker    *broker.Broker // the engine, for declaring streams and reading stats
	Caches    *cache.Store   // the caches, for inspection
	Server    *server.Server
	serverTLS *tls.Config
	done      chan error
}

type config struct {
	brokerOpts broker.Options
	serverOpts server.Options
	streams    []string
	caches     []string
	cacheCfg   cache.Config
	storeOpts  cache.StoreOptions
	durable    []string
	logDir     string
	logOpts    commitlog.Options
	addr       string
}

// WithDurableStreams declares streams "tenant/namespace/stream" backed by
// disk logs under dir (one subdirectory each), reopened on Restart.
func WithDurableStreams(dir string, o commitlog.Options, keys ...string) Option {
	return func(c *config) { c.durable, c.logDir, c.logOpts = append(c.durable, keys...), dir, o }
}

// WithCaches declares caches "tenant/namespace/cache" with cfg.
func WithCaches(cfg cache.Config, keys ...string) Option {
	return func(c *config) { c.caches, c.cacheCfg = append(c.caches, keys...), cfg }
}

// WithCacheStore sets the cache store options (e.g. an injected clock).
func WithCacheStore(o cache.StoreOptions) Option { return func(c *config) { c.storeOpts = o } }

// Option changes how the test broker starts.
type Option func(*config)

// WithStreams declares streams "tenant/namespace/stream".
func WithStreams(keys ...string) Option {
	return func(c *config) { c.streams = append(c.streams, keys...) }
}

// WithBrokerOptions sets the engine options.
func WithBrokerOptions(o broker.Options) Option { return func(c *config) { c.brokerOpts = o } }

// WithServerOptions sets server options (Broker and TLS are filled in).
func WithServerOptions(o server.Options) Option { return func(c *config) { c.serverOpts = o } }

// Start runs a broker until the test ends.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	cfg := config{addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("FELIX_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.serverOpts.Logger == nil {
		cfg.serverOpts.Logger = log
	}
	stls, err := transport.ServerTLSConfig(transport.TLSOptions{}, log)
	if err != nil {
		t.Fatalf("testbroker: tls: %v", err)
	}
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(stls.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatalf("testbroker: parse cert: %v", err)
	}
	pool.AddCert(leaf)
	ctls, err := transport.ClientTLSConfig(transport.ClientTLSOptions{RootCAs: pool})
	if err != nil {
		t.Fatalf("testbroker: client tls: %v", err)
	}
	b := &Broker{t: t, cfg: cfg, ClientTLS: ctls, serverTLS: stls}
	b.start()
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) start() {
	b.t.Helper()
	b.Broker = broker.New(b.cfg.brokerOpts)
	for _, k := range b.cfg.streams {
		parts := strings.SplitN(k, "/", 3)
		if len(parts) != 3 {
			b.t.Fatalf("testbroker: stream %q is not tenant/ns/stream", k)
		}
		if _, err := b.Broker.DeclareStream(parts[0], parts[1], parts[2]); err != nil {
			b.t.Fatalf("testbroker: declare %s: %v", k, err)
		}
	}
	for _, k := range b.cfg.durable {
		parts := strings.SplitN(k, "/", 3)
		if len(parts) != 3 {
			b.t.Fatalf("testbroker: durable stream %q is not tenant/ns/stream", k)
		}
		lg, err := commitlog.Open(filepath.Join(b.cfg.logDir, parts[0], parts[1], parts[2]), b.cfg.logOpts)
		if err != nil {
			b.t.Fatalf("testbroker: open log for %s: %v", k, err)
		}
		if _, err := b.Broker.DeclareLoggedStream(parts[0], parts[1], parts[2], broker.StreamOptions{Log: lg, Durable: true}); err != nil {
			lg.Close()
			b.t.Fatalf("testbroker: declare %s: %v", k, err)
		}
	}
	b.Caches = cache.NewStore(b.cfg.storeOpts)
	for _, k := range b.cfg.caches {
		parts := strings.SplitN(k, "/", 3)
		if len(parts) != 3 {
			b.t.Fatalf("testbroker: cache %q is not tenant/ns/cache", k)
		}
		if _, err := b.Caches.Create(cache.Scope{Tenant: parts[0], Namespace: parts[1], Cache: parts[2]}, b.cfg.cacheCfg); err != nil {
			b.t.Fatalf("testbroker: cache %s: %v", k, err)
		}
	}
	so := b.cfg.serverOpts
	so.Broker, so.TLS, so.Caches = b.Broker, b.serverTLS, b.Caches
	srv, err := server.New(so)
	if err != nil {
		b.t.Fatalf("testbroker: %v", err)
	}
	addr := b.cfg.addr
	var lerr error
	for range 50 { // on restart the old port may take a moment to free
		if lerr = srv.Listen(addr); lerr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lerr != nil {
		b.t.Fatalf("testbroker: %v", lerr)
	}
	b.Server = srv
	b.Addr = srv.Addr().String()
	_, port, _ := net.SplitHostPort(b.Addr)
	b.cfg.addr = net.JoinHostPort("127.0.0.1", port) // restarts reuse the port
	b.done = make(chan error, 1)
	go func() { b.done <- srv.Serve() }()
}

// Stop drains and stops the broker (idempotent).
func (b *Broker) Stop() {
	if b.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Server.Shutdown(ctx); err != nil {
		b.t.Logf("testbroker: shutdown: %v", err)
	}
	if err := <-b.done; err != nil {
		b.t.Errorf("testbroker: serve: %v", err)
	}
	b.Caches.Close()
	b.Server = nil
}

// Restart stops the broker and starts a fresh one (new engine, same
// streams declared) on the same address.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}
