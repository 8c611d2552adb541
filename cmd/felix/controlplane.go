package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

// cpFlags choose how the broker gets its metadata: an embedded control
// plane (store in the data dir, HTTP API on --controlplane-addr) or an
// external one followed over HTTP.
type cpFlags struct {
	addr, url, token string
	syncInterval     time.Duration
	// tls serves the embedded API over HTTPS with the broker's
	// certificate; caFile verifies an external one's (--controlplane-url
	// https://).
	tls    bool
	caFile string
}

func addControlPlaneFlags(fl *pflag.FlagSet, c *cpFlags) {
	fl.StringVar(&c.addr, "controlplane-addr", "127.0.0.1:8443", "HTTP address of the embedded control plane's /v1 API (store in --data-dir); \"off\" disables it")
	fl.StringVar(&c.url, "controlplane-url", "", "follow an external control plane at this URL instead of embedding one")
	fl.StringVar(&c.token, "controlplane-token", "", "admin credential (Bearer) for --controlplane-url")
	fl.DurationVar(&c.syncInterval, "controlplane-sync-interval", 2*time.Second, "how often the broker polls the control plane's change feed")
	fl.BoolVar(&c.tls, "controlplane-tls", false, "serve the embedded control plane's API over HTTPS with the broker's certificate (--tls-cert/--tls-key, reloaded on change, or the development certificate)")
	fl.StringVar(&c.caFile, "controlplane-ca-file", "", "PEM file of the CA that signs an https --controlplane-url's certificate, trusted besides the system's")
}

func (c cpFlags) validate(bad func(key, msg string, args ...any)) {
	if c.syncInterval < 10*time.Millisecond { // less is a busy loop
		bad("controlplane-sync-interval", "must be at least 10ms, got %v", c.syncInterval)
	}
	if c.tls && (c.url != "" || c.addr == "off") {
		bad("controlplane-tls", "serves the embedded control plane, and there is none with --controlplane-url or --controlplane-addr off")
	}
	if c.caFile != "" {
		if c.url == "" {
			bad("controlplane-ca-file", "verifies the control plane of --controlplane-url, which is not set")
		} else if _, err := transport.CertPoolFromFile(c.caFile); err != nil {
			bad("controlplane-ca-file", "%v", err)
		}
	}
}

// httpService is an HTTP server on its own listener, shut down with the
// broker.
type httpService struct {
	srv *http.Server
	ln  net.Listener
}

// httpFetchTimeout is httpClientWithCA's timeout (a variable for tests).
var httpFetchTimeout = 10 * time.Second

// httpClientWithCA is the HTTP client of a control plane's API and of a
// JWKS URL: a 10 s timeout, and with caFile its CAs trusted besides the
// system's.
func httpClientWithCA(caFile string) (*http.Client, error) {
	hc := &http.Client{Timeout: httpFetchTimeout}
	if caFile == "" {
		return hc, nil
	}
	pool, err := transport.CertPoolFromFile(caFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	hc.Transport = tr
	return hc, nil
}

// The control plane servers' connection bounds (variables for tests).
// httpReadTimeout bounds a whole request's read, its body included (at
// most the API's 1 MiB), so a client trickling a body does not hold a
// connection and a goroutine for ever; httpIdleTimeout closes keep-alive
// connections idle that long. There is no write timeout: a backup
// download is long, and bounds each write itself
// (controlplane.Options.BackupWriteTimeout).
var (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 30 * time.Second
	httpIdleTimeout       = 2 * time.Minute
)

// startHTTP serves h on addr, over TLS with tlsConf when it is not nil.
func startHTTP(addr string, h http.Handler, tlsConf *tls.Config, log *slog.Logger) (*httpService, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s := &httpService{ln: ln, srv: &http.Server{Handler: h,
		ReadHeaderTimeout: httpReadHeaderTimeout, ReadTimeout: httpReadTimeout, IdleTimeout: httpIdleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *httpService) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}

// runningControlPlane is the control plane side of a running broker.
type runningControlPlane struct {
	follower *controlplane.Follower
	store    *controlplane.Store // embedded only
	http     *httpService        // embedded only
}

// Addr is the embedded API's bound address, or nil.
func (r *runningControlPlane) Addr() net.Addr {
	if r == nil || r.http == nil {
		return nil
	}
	return r.http.ln.Addr()
}

func (r *runningControlPlane) close() {
	if r.http != nil {
		r.http.close()
	}
	if r.store != nil {
		r.store.Close()
	}
}

// openControlPlaneStore opens the metadata store in the data dir.
func openControlPlaneStore(dataDir string) (*controlplane.Store, error) {
	if dataDir == "" {
		return nil, errors.New("the embedded control plane needs --data-dir")
	}
	return controlplane.Open(filepath.Join(dataDir, controlplane.FileName), controlplane.StoreOptions{})
}

// controlPlaneHandler is the /v1 API with the admin check and the mounts.
func controlPlaneHandler(store *controlplane.Store, sec *security, oidcPath string, log *slog.Logger) (http.Handler, error) {
	mounts, err := controlPlaneMounts(sec, oidcPath, log)
	if err != nil {
		return nil, err
	}
	return controlplane.NewServer(controlplane.Options{Store: store, AdminToken: sec.admin, Authorize: sec.authorizeAdmin, Mount: mounts, Logger: log})
}

// startControlPlane embeds or follows a control plane and applies its
// metadata to the broker. The first sync runs before it returns (an
// external control plane that cannot be reached is retried in the
// background); Run continues until ctx ends.
//
// With --controlplane-tls the embedded API is served over HTTPS with the
// certificate of brokerTLS, the QUIC server's configuration.
func startControlPlane(ctx context.Context, f serveFlags, sec *security, b *broker.Broker, caches *cache.Store, srv *server.Server, brokerTLS *tls.Config, onSync func(time.Duration), log *slog.Logger) (*runningControlPlane, error) {
	c := f.cp
	if c.url == "" && c.addr == "off" {
		return nil, nil
	}
	syncPolicy, _ := commitlog.ParseSyncPolicy(f.fsync) // validated at start
	applier, err := controlplane.NewBrokerApplier(controlplane.BrokerApplierOptions{Broker: b, Caches: caches, DataDir: f.dataDir, Logger: log,
		// Sync is --fsync, for durable caches; each stream says its own, and
		// its retention. Caches take Sync, SyncInterval, SegmentBytes, Logger
		// and OnSync only (not RollInBackground: they compact their logs).
		Log:            streamLogOptions(f, syncPolicy, onSync, log),
		StreamsRemoved: srv.ForgetStreams,
		LogOpened: func(k broker.StreamKey, lg commitlog.Log) error {
			return server.ReconcileGroupStates(groupsDir(f.dataDir), k, lg, log)
		}})
	if err != nil {
		return nil, err
	}
	r := &runningControlPlane{}
	var src controlplane.Source
	if c.url != "" {
		hc, err := httpClientWithCA(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.sources.describe("controlplane-ca-file"), err)
		}
		src = controlplane.NewHTTPSource(c.url, c.token, hc)
	} else {
		if r.store, err = openControlPlaneStore(f.dataDir); err != nil {
			return nil, fmt.Errorf("%s: %w", f.sources.describe("controlplane-addr"), err)
		}
		h, err := controlPlaneHandler(r.store, sec, f.sec.oidcConfig, log)
		if err != nil {
			r.close()
			return nil, err
		}
		var httpsConf *tls.Config
		scheme := "http"
		if c.tls {
			httpsConf, scheme = transport.HTTPSConfig(brokerTLS), "https"
		}
		if r.http, err = startHTTP(c.addr, h, httpsConf, log); err != nil {
			r.close()
			return nil, fmt.Errorf("%s: %w", f.sources.describe("controlplane-addr"), err)
		}
		log.Info("control plane listening", "addr", r.http.ln.Addr().String(), "scheme", scheme, "api", "/v1", "openapi", "/v1/openapi.json")
		src = r.store
	}
	r.follower, err = controlplane.NewFollower(controlplane.FollowerOptions{Source: src, Applier: applier, SyncInterval: c.syncInterval, Logger: log})
	if err != nil {
		r.close()
		return nil, err
	}
	if err := r.follower.Sync(ctx); err != nil {
		log.Warn("control plane: first sync failed; retrying in the background", "err", err)
	}
	go r.follower.Run(ctx)
	return r, nil
}

// newControlPlaneCmd runs a standalone control plane: the metadata store
// and its /v1 API, for brokers started with --controlplane-url.
func newControlPlaneCmd() *cobra.Command {
	var (
		addr, dataDir, logFormat, logLevel string
		tlsCert, tlsKey                    string
		sec                                securityFlags
	)
	cmd := &cobra.Command{
		Use:   "controlplane",
		Short: "Run a standalone control plane (metadata API for brokers started with --controlplane-url)",
		Long: `Run the control plane alone: tenants, namespaces, streams and caches in a
bbolt store in --data-dir, served as a JSON API under /v1 (OpenAPI at
/v1/openapi.json). Every admin route needs "Authorization: Bearer <token>":
the --admin-token (default: a random one kept in <data-dir>/admin-token), or
a Felix token with the admin permission. Brokers follow it with
--controlplane-url and --controlplane-token.`,
		Args:    cobra.NoArgs,
		PreRunE: envPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			var errs []error
			sec.validate(func(key, msg string, args ...any) {
				errs = append(errs, fmt.Errorf("--%s: "+msg, append([]any{key}, args...)...))
			})
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			s, err := sec.setup(ctx, dataDir, true, true, log)
			if err != nil {
				return err
			}
			store, err := openControlPlaneStore(dataDir)
			if err != nil {
				return err
			}
			defer store.Close()
			h, err := controlPlaneHandler(store, s, sec.oidcConfig, log)
			if err != nil {
				return err
			}
			if err := checkHostPort(addr); err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			var httpsConf *tls.Config
			scheme := "http"
			if tlsCert != "" || tlsKey != "" {
				conf, _, err := transport.NewServerTLS(transport.TLSOptions{CertFile: tlsCert, KeyFile: tlsKey}, log)
				if err != nil {
					return fmt.Errorf("--tls-cert: %w", err)
				}
				httpsConf, scheme = transport.HTTPSConfig(conf), "https"
			}
			svc, err := startHTTP(addr, h, httpsConf, log)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			log.Info("control plane listening", "addr", svc.ln.Addr().String(), "scheme", scheme, "api", "/v1")
			if cpReadyHook != nil {
				cpReadyHook(svc.ln.Addr(), s.admin)
			}
			<-ctx.Done()
			svc.close()
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "listen", "127.0.0.1:8443", "HTTP listen address of the /v1 API")
	fl.StringVar(&tlsCert, "tls-cert", "", "PEM certificate chain: serve the API over HTTPS (with --tls-key; both reloaded when they change)")
	fl.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fl.StringVar(&dataDir, "data-dir", "felix-controlplane", "directory of the metadata store, the admin token and the token signing key")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	addSecurityFlags(fl, &sec)
	annotateEnv(fl)
	return cmd
}
