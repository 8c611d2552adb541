package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// FelixTarget is a Felix broker as a PubSubTarget: one publishing client,
// and one client (one event connection) per subscriber, as NATSTarget. The
// stream must exist (or the broker must auto-create). A batch is one
// PublishBatch call: fire-and-forget binary by default, or acked per batch
// with Acked (then each Publish waits for the ack, the reference's latency
// profile).
type FelixTarget struct {
	Addr      string
	TLS       *tls.Config
	Namespace string // default "default"
	Stream    string // default "bench"
	Acked     bool
	// SharedConn puts every subscriber on one event connection (as the
	// reference's latency demo does) instead of one connection each.
	SharedConn bool

	pub  *client.Client
	subs []*client.Client
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
	n    int
}

// Name implements PubSubTarget.
func (t *FelixTarget) Name() string {
	name := "felix"
	if t.Acked {
		name += "-acked"
	}
	if t.SharedConn {
		name += "-shared"
	}
	return name
}

func (t *FelixTarget) ns() string {
	if t.Namespace == "" {
		return "default"
	}
	return t.Namespace
}

func (t *FelixTarget) stream() string {
	if t.Stream == "" {
		return "bench"
	}
	return t.Stream
}

// dial opens one client with a single publish lane and event connection.
func (t *FelixTarget) dial(ctx context.Context) (*client.Client, error) {
	o := client.Options{TLS: t.TLS, Reconnect: client.ReconnectPolicy{Disabled: true}, SubscriptionBuffer: 1 << 16,
		PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1}
	c, err := client.Dial(ctx, t.Addr, o)
	if err != nil {
		return nil, fmt.Errorf("felix: dial %s: %w", t.Addr, err)
	}
	return c, nil
}

// Setup implements PubSubTarget.
func (t *FelixTarget) Setup(ctx context.Context, subscribers int, deliver func(sub int, payload []byte)) (err error) {
	if t.pub != nil {
		return errors.New("felix target is already set up")
	}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	t.ctx, t.stop = context.WithCancel(context.Background())
	t.done = make(chan struct{}, subscribers)
	if t.pub, err = t.dial(ctx); err != nil {
		return err
	}
	for i := range subscribers {
		var c *client.Client
		if t.SharedConn && i > 0 {
			c = t.subs[0]
		} else {
			if c, err = t.dial(ctx); err != nil {
				return err
			}
			t.subs = append(t.subs, c)
		}
		// The handler form, as the NATS target uses nats.go's callback
		// subscription: events go from the stream reader to deliver.
		sub, err := c.SubscribeFunc(ctx, t.ns(), t.stream(), func(ev client.Event) error {
			deliver(i, ev.Payload)
			return nil
		})
		if err != nil {
			return fmt.Errorf("felix: subscribe %d: %w", i, err)
		}
		t.n++
		go func() {
			defer func() { t.done <- struct{}{} }()
			select {
			case <-sub.Done():
			case <-t.ctx.Done():
				sub.Close()
			}
		}()
	}
	return nil
}

// Publish implements PubSubTarget.
func (t *FelixTarget) Publish(ctx context.Context, payloads [][]byte) error {
	if t.Acked {
		return t.pub.PublishBatch(ctx, t.ns(), t.stream(), payloads)
	}
	return t.pub.PublishBatch(ctx, t.ns(), t.stream(), payloads, client.WithAck(wire.AckNone))
}

// Flush implements PubSubTarget: an acked empty batch on the same publish
// lane returns once the broker has processed everything sent before it.
func (t *FelixTarget) Flush(ctx context.Context) error {
	return t.pub.PublishBatch(ctx, t.ns(), t.stream(), [][]byte{})
}

// Close implements PubSubTarget.
func (t *FelixTarget) Close() error {
	if t.stop != nil {
		t.stop()
	}
	var errs []error
	for _, c := range t.subs {
		errs = append(errs, c.Close())
	}
	for range t.n {
		<-t.done
	}
	if t.pub != nil {
		errs = append(errs, t.pub.Close())
	}
	t.pub, t.subs, t.n = nil, nil, 0
	return errors.Join(errs...)
}

// FelixBroker is a broker started for a benchmark.
type FelixBroker struct {
	Addr string
	TLS  *tls.Config // trusts the broker's certificate
	Stop func() error
	// DataDir is the broker's temporary data directory, removed by Stop
	// ("" when the broker has none: an embedded one without a durable
	// cache, an external one).
	DataDir string
}

// BenchCache is the cache every benchmark broker declares.
var BenchCache = cache.Scope{Tenant: "default", Namespace: "default", Cache: "bench"}

// DefaultDurableCacheFsync is the fsync period of a durable BenchCache
// (BenchBrokerOptions.DurableCache): once a second, as Redis's
// appendfsync everysec.
const DefaultDurableCacheFsync = time.Second

// BenchBrokerOptions are what a benchmark broker declares besides its
// streams.
type BenchBrokerOptions struct {
	// DurableCache declares BenchCache durable: every write is logged in
	// the broker's data directory (felix serve --durable-cache) under the
	// interval fsync policy, fsynced every FsyncInterval. Otherwise
	// BenchCache is in memory.
	DurableCache bool
	// FsyncInterval is the durable cache's fsync period. Default
	// DefaultDurableCacheFsync.
	FsyncInterval time.Duration
	// StreamLog gives the options of a durable stream's log, by its sync
	// policy, in a broker run in this process (a felix serve child opens
	// its logs as serve does). Default DurableStreamLogOptions; felix
	// bench passes felix serve's own.
	StreamLog func(commitlog.SyncPolicy) commitlog.Options
}

func (o BenchBrokerOptions) fsyncInterval() time.Duration {
	if o.FsyncInterval <= 0 {
		return DefaultDurableCacheFsync
	}
	return o.FsyncInterval
}

// StartEmbeddedFelix runs a broker in this process on 127.0.0.1 with an
// ephemeral certificate, the given streams ("tenant/ns/name") declared, and
// the unbounded cache BenchCache.
func StartEmbeddedFelix(opts broker.Options, streams ...string) (*FelixBroker, error) {
	return StartEmbeddedFelixWith(opts, BenchBrokerOptions{}, streams...)
}

// StartEmbeddedFelixWith is StartEmbeddedFelix with BenchCache declared as
// bo says; a durable one's log is in a temporary directory removed by Stop.
func StartEmbeddedFelixWith(opts broker.Options, bo BenchBrokerOptions, streams ...string) (_ *FelixBroker, err error) {
	b := broker.New(opts)
	for _, k := range streams {
		p := strings.Split(k, "/")
		if len(p) != 3 {
			return nil, fmt.Errorf("stream %q: want tenant/ns/name", k)
		}
		if _, err := b.DeclareStream(p[0], p[1], p[2]); err != nil {
			return nil, err
		}
	}
	stls, err := transport.ServerTLSConfig(transport.TLSOptions{}, nil)
	if err != nil {
		return nil, err
	}
	store := cache.NewStore(cache.StoreOptions{})
	var dir string // a durable cache's data directory
	defer func() {
		if err != nil {
			store.Close()
			if dir != "" {
				os.RemoveAll(dir)
			}
		}
	}()
	if bo.DurableCache {
		if dir, err = os.MkdirTemp("", "felix-bench-"); err != nil {
			return nil, err
		}
		_, err = store.CreateDurable(BenchCache, cache.Config{}, cache.DurableOptions{
			Dir:  cache.Dir(dir, BenchCache),
			Sync: commitlog.SyncInterval, SyncInterval: bo.fsyncInterval(), Logger: slog.New(slog.DiscardHandler),
		})
	} else {
		_, err = store.Create(BenchCache, cache.Config{})
	}
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Options{Broker: b, TLS: stls, Caches: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	leaf, err := x509.ParseCertificate(stls.Certificates[0].Certificate[0])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ctls, err := transport.ClientTLSConfig(transport.ClientTLSOptions{RootCAs: pool})
	if err != nil {
		return nil, err
	}
	// Stop may be called more than once (a deferred one after a checked
	// one): it stops the broker once and returns that result.
	return &FelixBroker{Addr: srv.Addr().String(), TLS: ctls, DataDir: dir, Stop: sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := errors.Join(srv.Shutdown(ctx), <-served)
		store.Close()
		if dir != "" {
			err = errors.Join(err, os.RemoveAll(dir))
		}
		return err
	})}, nil
}

// StartFelixProcess runs `binary serve` as a separate process (as NATS runs)
// on a free 127.0.0.1 port with a temporary data dir, extra serve flags,
// env added to this process's environment, and the given streams declared.
// Stop ends it with SIGTERM (by PID).
func StartFelixProcess(ctx context.Context, binary string, extra, env []string, streams ...string) (*FelixBroker, error) {
	return StartFelixProcessWith(ctx, binary, extra, env, BenchBrokerOptions{}, streams...)
}

// StartFelixProcessWith is StartFelixProcess with BenchCache declared as bo
// says: a durable one with --durable-cache --fsync interval
// --fsync-interval, before extra (so a --fsync-interval there wins), its
// log in the temporary data dir.
func StartFelixProcessWith(ctx context.Context, binary string, extra, env []string, bo BenchBrokerOptions, streams ...string) (*FelixBroker, error) {
	dir, err := os.MkdirTemp("", "felix-bench-")
	if err != nil {
		return nil, err
	}
	addr, err := freeUDPAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--listen", addr, "--data-dir", dir, "--log-level", "warn", "--no-dev-defaults",
		"--metrics-addr", "off", "--controlplane-addr", "off"}
	if bo.DurableCache {
		args = append(args, "--durable-cache", BenchCache.String(), "--fsync", "interval", "--fsync-interval", bo.fsyncInterval().String())
	} else {
		args = append(args, "--cache", BenchCache.String())
	}
	for _, s := range streams {
		args = append(args, "--stream", s)
	}
	cmd := peerCommand(binary, append(args, extra...), env)
	logs := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := sync.OnceValue(func() error { // once: a second call returns the first result
		cmd.Process.Signal(os.Interrupt)
		var err error
		select {
		case err = <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			err = <-exited
		}
		os.RemoveAll(dir)
		return err
	})
	certPath := filepath.Join(dir, transport.DevCertFile)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(certPath); err == nil {
			ctls, err := transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: certPath})
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				c, derr := client.Dial(cctx, addr, client.Options{TLS: ctls, Reconnect: client.ReconnectPolicy{Disabled: true}})
				cancel()
				if derr == nil {
					c.Close()
					return &FelixBroker{Addr: addr, TLS: ctls, Stop: stop, DataDir: dir}, nil
				}
			}
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("felix serve exited: %v: %s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("felix serve did not come up on %s: %s", addr, logs.String())
		}
	}
}

func freeUDPAddr() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}
