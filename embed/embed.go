// Package embed runs a complete Felix broker inside a Go program: engine,
// QUIC server on 127.0.0.1, development certificate, durable streams,
// caches (durable ones too) and queue groups. It is what the demos and examples use; a real
// deployment runs `felix serve`.
package embed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

// Options say what the embedded broker declares. The zero value is an
// empty broker in a temporary directory.
type Options struct {
	Streams        []string // "tenant/ns/name", in memory
	DurableStreams []string // "tenant/ns/name", logs under DataDir
	Caches         []string // "tenant/ns/name", in memory
	// DurableCaches are "tenant/ns/name", each logged under
	// DataDir/caches/tenant/ns/name (the directory felix serve
	// --durable-cache uses) and reloaded by Start. A name must not be in
	// Caches too.
	DurableCaches []string
	// DataDir keeps durable streams, durable caches and queue state.
	// Default: a temporary directory removed by Close.
	DataDir string
	// Sync is the durable streams' and durable caches' sync policy.
	// Default SyncInterval.
	Sync   commitlog.SyncPolicy
	Queues server.QueueOptions
	// Caches' memory: the bound on all caches together and how expiry is
	// swept (cache.StoreOptions; its MaxTotalBytes defaults to 1 GiB, as
	// felix serve's --cache-max-total-bytes).
	CacheStore cache.StoreOptions
	// Broker configures the engine. Unlike felix serve, an embedded
	// broker has no free-space floor unless one is set here: start a
	// diskfree.Guard on DataDir and pass its Check as StorageGuard.
	Broker broker.Options
	Logger *slog.Logger // default: discard
}

// Broker is a running embedded broker.
type Broker struct {
	Addr      string
	ClientTLS *tls.Config // trusts the broker's certificate
	Engine    *broker.Broker
	Server    *server.Server
	caches    *cache.Store
	served    chan error
	tmp       string

	closeOnce sync.Once
	closeErr  error
}

func split(k string) (string, string, string, error) {
	p := strings.Split(k, "/")
	if len(p) != 3 {
		return "", "", "", fmt.Errorf("%q: want tenant/namespace/name", k)
	}
	return p[0], p[1], p[2], nil
}

// Start runs a broker until Close.
func Start(o Options) (_ *Broker, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{served: make(chan error, 1)}
	if o.DataDir == "" {
		if b.tmp, err = os.MkdirTemp("", "felix-embed-"); err != nil {
			return nil, err
		}
		o.DataDir = b.tmp
	}
	if o.Broker.Logger == nil {
		o.Broker.Logger = o.Logger // the engine's warnings go where the server's do
	}
	b.Engine = broker.New(o.Broker)
	defer func() {
		if err != nil {
			if b.caches != nil {
				b.caches.Close() // closes the durable caches' logs
			}
			b.Engine.Close()
			if b.tmp != "" {
				os.RemoveAll(b.tmp)
			}
		}
	}()
	for _, k := range o.Streams {
		t, ns, s, err := split(k)
		if err != nil {
			return nil, err
		}
		if _, err := b.Engine.DeclareStream(t, ns, s); err != nil {
			return nil, err
		}
	}
	q := o.Queues
	if q.StateDir == "" {
		q.StateDir = commitlog.DirFor(o.DataDir, "groups")
	}
	for _, k := range o.DurableStreams {
		t, ns, s, err := split(k)
		if err != nil {
			return nil, err
		}
		lg, err := commitlog.Open(commitlog.DirFor(o.DataDir, "streams", t, ns, s), commitlog.Options{Sync: o.Sync, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		if err := server.ReconcileGroupStates(q.StateDir, broker.StreamKey{Tenant: t, Namespace: ns, Stream: s}, lg, o.Logger); err != nil {
			lg.Close()
			return nil, err
		}
		if _, err := b.Engine.DeclareLoggedStream(t, ns, s, broker.StreamOptions{Log: lg, Durable: true}); err != nil {
			lg.Close()
			return nil, err
		}
	}
	b.caches = cache.NewStore(o.CacheStore)
	durable := map[cache.Scope]bool{}
	for _, k := range o.DurableCaches {
		t, ns, c, err := split(k)
		if err != nil {
			return nil, err
		}
		scope := cache.Scope{Tenant: t, Namespace: ns, Cache: c}
		if _, err := b.caches.CreateDurable(scope, cache.Config{}, cache.DurableOptions{
			Dir: cache.Dir(o.DataDir, scope), Sync: o.Sync, Logger: o.Logger,
		}); err != nil {
			return nil, err
		}
		durable[scope] = true
	}
	for _, k := range o.Caches {
		t, ns, c, err := split(k)
		if err != nil {
			return nil, err
		}
		scope := cache.Scope{Tenant: t, Namespace: ns, Cache: c}
		if durable[scope] {
			return nil, fmt.Errorf("cache %s is in both Caches and DurableCaches", scope)
		}
		if _, err := b.caches.Create(scope, cache.Config{}); err != nil {
			return nil, err
		}
	}
	stls, err := transport.ServerTLSConfig(transport.TLSOptions{}, o.Logger)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(stls.Certificates[0].Certificate[0])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	if b.ClientTLS, err = transport.ClientTLSConfig(transport.ClientTLSOptions{RootCAs: pool}); err != nil {
		return nil, err
	}
	b.Server, err = server.New(server.Options{Broker: b.Engine, TLS: stls, Caches: b.caches, Queues: q, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	if err := b.Server.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	b.Addr = b.Server.Addr().String()
	go func() { b.served <- b.Server.Serve() }()
	return b, nil
}

// Dial connects a client to the broker (options' TLS is filled in).
func (b *Broker) Dial(ctx context.Context, o client.Options) (*client.Client, error) {
	o.TLS = b.ClientTLS
	return client.Dial(ctx, b.Addr, o)
}

// Close drains and stops the broker, closes the caches (and the durable
// caches' logs) and removes a temporary data dir. It is safe to call more
// than once, also concurrently: every call returns once the broker is
// stopped, with the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := errors.Join(b.Server.Shutdown(ctx), <-b.served)
		b.caches.Close()
		if b.tmp != "" {
			err = errors.Join(err, os.RemoveAll(b.tmp))
		}
		b.closeErr = err
	})
	return b.closeErr
}
