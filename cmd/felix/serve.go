package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/diskfree"
	"github.com/felixmq/felix/metrics"
	"github.com/felixmq/felix/queue"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

type serveFlags struct {
	addr, dataDir, tlsCert, tlsKey   string
	streams, caches                  []string
	durableStreams                   []string
	durableCaches                    []string
	fsync                            string
	fsyncInterval, retentionAge      time.Duration
	segmentBytes, retentionBytes     int64
	diskFreeLimit                    int64
	queueAckTimeout                  time.Duration
	queueBackoffMin, queueBackoffMax time.Duration
	queueMaxAttempts, queuePrefetch  int
	queueMaxInFlightBytes            int64
	queueMaxGroups                   int
	queueDLQSuffix                   string
	cacheMaxBytes                    int64
	cacheMaxTotalBytes               int64
	autoCreate, noDevDefaults        bool
	queuePolicy                      string
	queueCapacity                    int
	queueMaxBytes                    int
	maxFrameBytes                    int
	autoCreateMaxStreams             int
	maxConnections                   int
	autoCreateMaxCaches              int
	batchMaxEvents, batchMaxBytes    int
	writeMaxDelay                    time.Duration
	ringCapacity                     int
	maxSubsPerConn                   int
	shutdownTimeout                  time.Duration
	authTimeout                      time.Duration
	responderStallTimeout            time.Duration
	logFormat, logLevel              string
	configFile, metricsAddr          string
	metricsTLS                       bool
	printConfig                      bool
	tlsClientCA                      string
	tlsRequireClientCert             bool
	limits                           server.TenantLimits
	sec                              securityFlags
	cp                               cpFlags
	// sources records where each flag's value came from (flag, env, file).
	sources configSources
}

// serveReadyHook lets in-process tests learn the bound address.
var serveReadyHook func(addr string, b *broker.Broker)

// serverOptionsHook lets in-process tests see the options serve gives
// the server.
var serverOptionsHook func(server.Options)

// cpReadyHook lets in-process tests learn the embedded control plane's
// address (nil when off) and the admin token.
var cpReadyHook func(addr net.Addr, adminToken string)

// maxWriteMaxDelay bounds --event-batch-max-delay: on an idle stream every
// event waits the whole delay, so a typo such as 1h would stall delivery.
const maxWriteMaxDelay = time.Second

// minResponderStallTimeout is the least --responder-stall-timeout but 0:
// below it, a responder would be taken out of service by a moment's wait
// on flow control (a GC pause, a busy machine), not by a stop.
const minResponderStallTimeout = 10 * time.Millisecond

// responderStallBound is server.Options.ResponderStallTimeout for
// --responder-stall-timeout: the flag's 0 is no bound, the server's its
// default (its no bound is negative).
func responderStallBound(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// markReady flips /ready once the control plane's first sync is done (at
// once without a control plane).
func markReady(ctx context.Context, ms *metrics.Server, cp *runningControlPlane) {
	if cp != nil {
		select {
		case <-ctx.Done():
			return
		case <-cp.follower.ReadyC():
		}
	}
	ms.SetReady(true)
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker",
		Long: `Run the Felix broker on QUIC (UDP).

With no flags it starts in development mode: it listens on 127.0.0.1:5000 (UDP),
accepts any token, uses a development certificate kept in --data-dir, and
declares the stream default/default/demo, the durable stream default/default/jobs
(for queues; kept in --data-dir) and the cache default/default/demo.
Every flag can also be set with the FELIX_* environment variable shown.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) (err error) {
			f.sources, err = loadLayers(cmd.Flags())
			return err
		},
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			if f.printConfig {
				if err := f.validate(); err != nil {
					return err
				}
				return printConfig(cmd.OutOrStdout(), cmd.Flags(), f.sources)
			}
			return runServe(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "listen", "127.0.0.1:5000", "QUIC (UDP) listen address; use 0.0.0.0:5000 to accept remote clients")
	fl.StringVar(&f.dataDir, "data-dir", "felix-data", "data directory: development certificate, durable stream and cache logs, queue group state, keys and the admin token")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate PEM file (default: a development certificate)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key PEM file")
	fl.StringSliceVar(&f.streams, "stream", nil, "declare a stream tenant/namespace/name (repeatable or comma-separated)")
	fl.StringSliceVar(&f.durableStreams, "durable-stream", nil, "declare a durable (disk-logged) stream tenant/namespace/name[:fsync-policy], kept in --data-dir (repeatable); the policy overrides --fsync for that stream")
	fl.StringVar(&f.fsync, "fsync", "interval", "durable streams' and durable caches' sync policy: always (ack after fsync, group commit), interval or never")
	fl.DurationVar(&f.fsyncInterval, "fsync-interval", 100*time.Millisecond, "fsync period for --fsync interval (its loss window on power failure)")
	fl.Int64Var(&f.segmentBytes, "segment-bytes", 64<<20, "durable log segment size")
	fl.Int64Var(&f.retentionBytes, "retention-bytes", 0, "durable streams keep at most this many bytes (whole segments; 0 = no limit)")
	fl.DurationVar(&f.retentionAge, "retention-age", 0, "durable streams drop segments older than this (0 = no limit)")
	fl.Int64Var(&f.diskFreeLimit, "disk-free-limit", diskfree.DefaultLimit, "refuse publishes to durable streams and puts to durable caches while the data dir's file system has less than this many bytes free (storage write failed; cleared once there is room; 0 = off)")
	fl.DurationVar(&f.queueAckTimeout, "queue-ack-timeout", 30*time.Second, "queue deliveries not acked within this are redelivered")
	fl.IntVar(&f.queueMaxAttempts, "queue-max-attempts", 5, "deliveries of a queue record before it is dead-lettered (-1: no limit, never dead-letter)")
	fl.DurationVar(&f.queueBackoffMin, "queue-backoff-min", queue.DefaultBackoffMin, "redelivery delay after a queue delivery's first ack timeout, doubling with each attempt")
	fl.DurationVar(&f.queueBackoffMax, "queue-backoff-max", queue.DefaultBackoffMax, "longest redelivery delay after an ack timeout")
	fl.IntVar(&f.queueMaxGroups, "queue-max-groups", server.DefaultMaxGroupsPerStream, "consumer groups a stream may have (each keeps its state until the stream is deleted)")
	fl.IntVar(&f.queuePrefetch, "queue-prefetch", 64, "default unacked deliveries per queue consumer")
	fl.Int64Var(&f.queueMaxInFlightBytes, "queue-max-inflight-bytes", 64<<20, "payload bytes one queue consumer may hold unacked, whatever its prefetch (a single larger record still goes alone to a consumer holding nothing)")
	fl.StringVar(&f.queueDLQSuffix, "queue-dead-letter-suffix", ".dlq", "dead letters of stream S go to stream S<suffix> when it exists (\"\" = the default .dlq)")
	fl.StringSliceVar(&f.caches, "cache", nil, "declare a cache tenant/namespace/name[:max-bytes] (repeatable or comma-separated)")
	// FELIX_CACHE is the client commands' cache name (felix cache --cache),
	// and one shell profile holds the variables of both.
	_ = fl.SetAnnotation("cache", envAnnotation, []string{"FELIX_DECLARE_CACHE"})
	fl.StringSliceVar(&f.durableCaches, "durable-cache", nil, "declare a durable cache tenant/namespace/name[:max-bytes], logged in --data-dir and reloaded at start (repeatable); it follows --fsync and --fsync-interval")
	fl.Int64Var(&f.cacheMaxBytes, "cache-max-bytes", 0, "capacity of caches declared without one and of auto-created caches (0 = unbounded)")
	fl.Int64Var(&f.cacheMaxTotalBytes, "cache-max-total-bytes", cache.DefaultMaxTotalBytes, "bytes all caches together may hold, as Redis's maxmemory: a write over it evicts from the largest caches (0 = no bound beyond each cache's)")
	fl.BoolVar(&f.autoCreate, "auto-create", false, "create unknown streams and caches on first use")
	fl.IntVar(&f.autoCreateMaxStreams, "auto-create-max-streams", 10000, "with --auto-create, no stream is created while the broker has this many (-1: no limit)")
	fl.IntVar(&f.autoCreateMaxCaches, "auto-create-max-caches", server.DefaultMaxAutoCreatedCaches, "with --auto-create, no cache is created while the broker has this many (-1: no limit)")
	fl.BoolVar(&f.noDevDefaults, "no-dev-defaults", false, "do not declare the stream default/default/demo, the durable stream default/default/jobs and the cache default/default/demo")
	fl.StringVar(&f.queuePolicy, "queue-policy", "drop_new", "full subscriber queue policy: drop_new, drop_old or block")
	fl.IntVar(&f.queueCapacity, "queue-capacity", 512, "per-subscriber queue bound, in frames")
	fl.IntVar(&f.queueMaxBytes, "queue-max-bytes", 64<<20, "per-subscriber queue bound, in bytes (a single larger frame is still queued alone)")
	fl.IntVar(&f.maxFrameBytes, "max-frame-bytes", 16<<20, "largest accepted frame payload, in bytes")
	fl.IntVar(&f.batchMaxEvents, "event-batch-max-events", 64, "events per delivered frame")
	fl.IntVar(&f.batchMaxBytes, "event-batch-max-bytes", 64<<10, "payload bytes per delivered frame")
	fl.DurationVar(&f.writeMaxDelay, "event-batch-max-delay", 0, "how long a subscriber writer waits to coalesce more frames (0 = never wait; at most 1s)")
	fl.IntVar(&f.ringCapacity, "replay-ring", 1024, "events kept per stream for earliest/offset starts (0 = the default 1024; negative disables)")
	fl.IntVar(&f.maxSubsPerConn, "max-subscriptions-per-conn", 4096, "live subscriptions allowed per connection")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 25*time.Second, "drain budget on SIGTERM/SIGINT")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.configFile, "config", "", "YAML config file; its keys are these flags' names (flag > env > file > default)")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca", "", "CA file (PEM) of client certificates: enables mTLS; clients presenting a certificate must chain to it")
	fl.BoolVar(&f.tlsRequireClientCert, "tls-require-client-cert", false, "refuse clients without a valid certificate (needs --tls-client-ca)")
	fl.IntVar(&f.limits.MaxConnections, "tenant-max-connections", 0, "connections per tenant (0 = unlimited)")
	fl.IntVar(&f.maxConnections, "max-connections", 65536, "open connections, all tenants together; one more is closed at once")
	fl.DurationVar(&f.authTimeout, "auth-timeout", 10*time.Second, "a new stream must send its auth frame within this, and a connection must authenticate a stream within this of its accept")
	fl.DurationVar(&f.responderStallTimeout, "responder-stall-timeout", server.DefaultResponderStallTimeout, "a responder whose stream takes none of the requests written to it for this long (it stopped reading) is taken out of service: its requests in flight fail with responder_gone (0 = no bound; else at least 10ms)")
	fl.IntVar(&f.limits.MaxSubscriptions, "tenant-max-subscriptions", 0, "live subscriptions and queue consumers per tenant (0 = unlimited)")
	fl.Int64Var(&f.limits.PublishBytesPerSec, "tenant-publish-bytes-per-sec", 0, "published payload bytes per second per tenant (0 = unlimited)")
	addSecurityFlags(fl, &f.sec)
	addControlPlaneFlags(fl, &f.cp)
	fl.StringVar(&f.metricsAddr, "metrics-addr", metrics.DefaultAddr, "HTTP address of /metrics, /live, /ready and the dashboard; \"off\" disables it")
	fl.BoolVar(&f.metricsTLS, "metrics-tls", false, "serve --metrics-addr over HTTPS with the broker's certificate (--tls-cert/--tls-key, reloaded on change, or the development certificate)")
	fl.BoolVar(&f.printConfig, "print-config", false, "print the effective configuration as YAML (with where each value came from) and exit")
	annotateEnv(fl)
	return cmd
}

func (f serveFlags) validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+msg, append([]any{f.sources.describe(key)}, args...)...))
	}
	if f.queueCapacity <= 0 {
		bad("queue-capacity", "must be positive, got %d", f.queueCapacity)
	}
	if f.queueMaxBytes <= 0 {
		bad("queue-max-bytes", "must be positive, got %d", f.queueMaxBytes)
	}
	for key, n := range map[string]int{"auto-create-max-streams": f.autoCreateMaxStreams, "auto-create-max-caches": f.autoCreateMaxCaches} {
		if n == 0 || n < -1 {
			bad(key, "must be positive, or -1 for no limit, got %d", n)
		}
	}
	if f.maxConnections <= 0 {
		bad("max-connections", "must be positive, got %d", f.maxConnections)
	}
	if f.authTimeout < 10*time.Millisecond {
		bad("auth-timeout", "must be at least 10ms, got %v", f.authTimeout)
	}
	if f.responderStallTimeout < 0 {
		bad("responder-stall-timeout", "must not be negative, got %v (0 = no bound)", f.responderStallTimeout)
	} else if f.responderStallTimeout > 0 && f.responderStallTimeout < minResponderStallTimeout {
		bad("responder-stall-timeout", "must be 0 (no bound) or at least %v, got %v", minResponderStallTimeout, f.responderStallTimeout)
	}
	if f.maxFrameBytes <= 0 || f.maxFrameBytes > math.MaxUint32 {
		bad("max-frame-bytes", "must be between 1 and %d (the frame length is 32 bits), got %d", uint32(math.MaxUint32), f.maxFrameBytes)
	}
	if f.batchMaxEvents <= 0 {
		bad("event-batch-max-events", "must be positive, got %d", f.batchMaxEvents)
	}
	if f.batchMaxBytes <= 0 {
		bad("event-batch-max-bytes", "must be positive, got %d", f.batchMaxBytes)
	}
	if f.writeMaxDelay < 0 || f.writeMaxDelay > maxWriteMaxDelay {
		bad("event-batch-max-delay", "must be between 0 and %v, got %v (every event of an idle stream waits this long)", maxWriteMaxDelay, f.writeMaxDelay)
	}
	if f.maxSubsPerConn <= 0 {
		bad("max-subscriptions-per-conn", "must be positive, got %d", f.maxSubsPerConn)
	}
	if _, err := commitlog.ParseSyncPolicy(f.fsync); err != nil {
		bad("fsync", "%v", err)
	}
	if f.fsyncInterval < time.Millisecond {
		bad("fsync-interval", "must be at least 1ms, got %v", f.fsyncInterval)
	}
	if f.segmentBytes <= 0 {
		bad("segment-bytes", "must be positive, got %d", f.segmentBytes)
	}
	if f.retentionBytes < 0 {
		bad("retention-bytes", "must not be negative, got %d", f.retentionBytes)
	}
	if f.retentionAge < 0 {
		bad("retention-age", "must not be negative")
	}
	if f.diskFreeLimit < 0 {
		bad("disk-free-limit", "must not be negative, got %d (0 turns it off)", f.diskFreeLimit)
	}
	if len(f.durableStreams) > 0 && f.dataDir == "" {
		bad("data-dir", "durable streams need a data directory")
	}
	if f.queueAckTimeout <= 0 {
		bad("queue-ack-timeout", "must be positive")
	}
	if f.queueMaxGroups <= 0 {
		bad("queue-max-groups", "must be positive, got %d", f.queueMaxGroups)
	}
	if f.queueMaxAttempts <= 0 && f.queueMaxAttempts != -1 {
		bad("queue-max-attempts", "must be positive, or -1 for no limit, got %d", f.queueMaxAttempts)
	}
	if f.queueBackoffMin <= 0 || f.queueBackoffMax <= 0 {
		bad("queue-backoff-min", "the redelivery backoff must be positive, got %v and %v", f.queueBackoffMin, f.queueBackoffMax)
	} else if f.queueBackoffMax < f.queueBackoffMin {
		bad("queue-backoff-max", "%v is below --queue-backoff-min %v", f.queueBackoffMax, f.queueBackoffMin)
	}
	if f.queuePrefetch <= 0 {
		bad("queue-prefetch", "must be positive, got %d", f.queuePrefetch)
	}
	if f.queueMaxInFlightBytes <= 0 {
		bad("queue-max-inflight-bytes", "must be positive, got %d", f.queueMaxInFlightBytes)
	}
	if f.cacheMaxBytes < 0 {
		bad("cache-max-bytes", "must not be negative, got %d", f.cacheMaxBytes)
	}
	if f.cacheMaxTotalBytes < 0 {
		bad("cache-max-total-bytes", "must not be negative, got %d", f.cacheMaxTotalBytes)
	}
	if f.shutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive")
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		bad("tls-cert", "--tls-cert and --tls-key go together")
	}
	if _, err := broker.ParseQueuePolicy(f.queuePolicy); err != nil {
		bad("queue-policy", "%v", err)
	}
	for key, path := range map[string]string{"tls-cert": f.tlsCert, "tls-key": f.tlsKey} {
		if path == "" {
			continue
		}
		if _, err := os.ReadFile(path); err != nil {
			bad(key, "unreadable: %v", err)
		}
	}
	if f.tlsRequireClientCert && f.tlsClientCA == "" {
		bad("tls-require-client-cert", "needs --tls-client-ca")
	}
	if f.tlsClientCA != "" { // read as the broker will, so a bad bundle is named by its own setting
		if _, err := transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: f.tlsClientCA}); err != nil {
			bad("tls-client-ca", "%v", err)
		}
	}
	for key, n := range map[string]int64{"tenant-max-connections": int64(f.limits.MaxConnections),
		"tenant-max-subscriptions": int64(f.limits.MaxSubscriptions), "tenant-publish-bytes-per-sec": f.limits.PublishBytesPerSec} {
		if n < 0 {
			bad(key, "must not be negative, got %d", n)
		}
	}
	f.validateDeclarations(bad)
	f.validateDurableCaches(bad)
	f.validateAddrs(bad)
	f.sec.validate(bad)
	f.cp.validate(bad)
	if f.metricsTLS && f.metricsAddr == "off" {
		bad("metrics-tls", "serves --metrics-addr over HTTPS, which is off")
	}
	if _, err := newLogger(io.Discard, "text", f.logLevel); err != nil {
		bad("log-level", "unknown level %q (want debug, info, warn or error)", f.logLevel)
	}
	if _, err := newLogger(io.Discard, f.logFormat, "info"); err != nil {
		bad("log-format", "unknown format %q (want text or json)", f.logFormat)
	}
	return errors.Join(errs...)
}

func runServe(ctx context.Context, cmd *cobra.Command, f serveFlags) error {
	// SIGHUP is ours from the start to the end, drain included: Go's
	// default for it ends the process, and a log rotation or certificate
	// deployment must not cut a drain short or kill a broker that is
	// still recovering its logs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	if err := f.validate(); err != nil {
		return err
	}
	log, err := newLogger(cmd.ErrOrStderr(), f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	reportUnknownEnv(log, newRootCmd(), os.Environ())
	if f.dataDir != "" {
		if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
			return fmt.Errorf("%s: %w", f.sources.describe("data-dir"), err)
		}
		unlock, err := lockDataDir(f.dataDir)
		if err != nil {
			return fmt.Errorf("%s: %w", f.sources.describe("data-dir"), err)
		}
		defer unlock()
	}
	guard, err := startDiskGuard(&f, log)
	if err != nil {
		return err
	}
	defer guard.Close()
	policy, _ := broker.ParseQueuePolicy(f.queuePolicy)
	b := broker.New(broker.Options{
		Logger:                log,
		StorageGuard:          guard.Check,
		AutoCreateStreams:     f.autoCreate,
		MaxAutoCreatedStreams: f.autoCreateMaxStreams,
		QueueCapacity:         f.queueCapacity,
		QueueMaxBytes:         f.queueMaxBytes,
		QueuePolicy:           policy,
		MaxEventsPerFrame:     f.batchMaxEvents,
		MaxBytesPerFrame:      f.batchMaxBytes,
		WriteMaxDelay:         f.writeMaxDelay,
		RingCapacity:          f.ringCapacity,
	})
	defer b.Close()
	totalBytes := f.cacheMaxTotalBytes
	if totalBytes == 0 {
		totalBytes = -1 // the flag's 0 is no bound, the Store's its default
	}
	store := cache.NewStore(cache.StoreOptions{MaxTotalBytes: totalBytes})
	defer store.Close()
	syncPolicy, _ := commitlog.ParseSyncPolicy(f.fsync)
	servesAPI := f.cp.url == "" && f.cp.addr != "off" // a follower or no control plane needs no admin token
	sec, err := f.sec.setup(ctx, f.dataDir, f.sec.oidcConfig != "", servesAPI, log)
	if err != nil {
		return err
	}
	handshakeFailures := new(transport.HandshakeFailures) // felix_tls_handshake_failures_total
	srv, tlsConf, tlsFiles, err := newServer(f, b, store, syncPolicy, sec, handshakeFailures, log)
	if err != nil {
		return err
	}
	go reloadOnSIGHUP(hup, tlsFiles, log)
	// Health and metrics come first, so /ready says "starting" while the
	// durable logs recover.
	var ms *metrics.Server
	syncHist := metrics.NewSyncHistogram()
	var follower atomic.Pointer[controlplane.Follower] // set once the control plane runs
	if f.metricsAddr != "off" {
		var mtls *tls.Config
		if f.metricsTLS {
			mtls = transport.HTTPSConfig(tlsConf)
		}
		ms = metrics.New(metrics.Options{Addr: f.metricsAddr, Logger: log, TLS: mtls, Sources: metrics.Sources{
			Broker: b, Server: srv, Caches: store, Sync: syncHist,
			Denials: srv, Follower: follower.Load, HandshakeFailures: handshakeFailures, Disk: guard,
		}})
		if err := ms.Start(); err != nil {
			return fmt.Errorf("%s: %w", f.sources.describe("metrics-addr"), err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ms.Shutdown(sctx)
		}()
	}
	if err := dropOrphanGroupStates(f.dataDir, log); err != nil {
		return fmt.Errorf("%s: %w", f.sources.describe("data-dir"), err)
	}
	if err := declareStreams(b, f, syncPolicy, syncHist.Observe, log); err != nil {
		return err
	}
	if err := declareCaches(store, f, syncPolicy, syncHist.Observe, log); err != nil {
		return err
	}
	cp, err := startControlPlane(ctx, f, sec, b, store, srv, tlsConf, syncHist.Observe, log)
	if err != nil {
		return err
	}
	if cp != nil {
		defer cp.close()
		follower.Store(cp.follower)
		go func() { // once the control plane's streams are declared too
			select {
			case <-ctx.Done():
			case <-cp.follower.ReadyC():
				reportUnservedLogs(b, f.dataDir, log)
				reportUnservedCacheLogs(store, f.dataDir, log)
				reportOpenFiles(log)
			}
		}()
	} else {
		reportUnservedLogs(b, f.dataDir, log)
		reportUnservedCacheLogs(store, f.dataDir, log)
		reportOpenFiles(log)
	}
	if err := srv.Listen(f.addr); err != nil {
		return fmt.Errorf("%s: %w", f.sources.describe("listen"), err)
	}
	if f.sec.authMode == "dev" {
		log.Warn("development mode: any token is accepted for any tenant (--auth token to require Felix tokens)")
	}
	if serveReadyHook != nil {
		serveReadyHook(srv.Addr().String(), b)
	}
	if cpReadyHook != nil {
		cpReadyHook(cp.Addr(), sec.admin)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	if ms != nil {
		go markReady(ctx, ms, cp)
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutdown signal received", "budget", f.shutdownTimeout)
	defer exitOnSecondSignal(log)()
	if ms != nil {
		ms.SetDraining()
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; serr != nil && err == nil {
		err = serr
	}
	log.Info("felix stopped")
	return err
}

// newServer builds the QUIC server (not yet listening) from the flags. It
// also returns the server's TLS configuration and the files behind it.
func newServer(f serveFlags, b *broker.Broker, store *cache.Store, syncPolicy commitlog.SyncPolicy, sec *security,
	handshakeFailures *transport.HandshakeFailures, log *slog.Logger) (*server.Server, *tls.Config, *transport.TLSFiles, error) {
	tlsConf, tlsFiles, err := transport.NewServerTLS(transport.TLSOptions{CertFile: f.tlsCert, KeyFile: f.tlsKey, DataDir: f.dataDir,
		ClientCAFile: f.tlsClientCA, RequireClientCert: f.tlsRequireClientCert}, log)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", f.sources.describe("tls-cert"), err)
	}
	topts := transport.Options{HandshakeFailures: handshakeFailures}
	if f.dataDir != "" {
		if topts.StatelessResetKey, err = transport.LoadOrCreateResetKey(f.dataDir); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", f.sources.describe("data-dir"), err)
		}
	}
	opts := server.Options{
		Broker: b, TLS: tlsConf, Transport: topts,
		Caches: store, AutoCreateCaches: f.autoCreate, MaxAutoCreatedCaches: f.autoCreateMaxCaches, DefaultCacheConfig: cache.Config{MaxBytes: f.cacheMaxBytes},
		Queues: server.QueueOptions{AckTimeout: f.queueAckTimeout, MaxAttempts: f.queueMaxAttempts, MaxGroupsPerStream: f.queueMaxGroups,
			BackoffMin: f.queueBackoffMin, BackoffMax: f.queueBackoffMax,
			DefaultPrefetch: f.queuePrefetch, MaxInFlightBytes: f.queueMaxInFlightBytes, DeadLetterSuffix: f.queueDLQSuffix, StateDir: groupsDir(f.dataDir),
			StateSync: syncPolicy}, MaxFrameBytes: f.maxFrameBytes,
		MaxSubscriptionsPerConn: f.maxSubsPerConn, MaxConnections: f.maxConnections, AuthTimeout: f.authTimeout,
		ResponderStallTimeout: responderStallBound(f.responderStallTimeout), Logger: log, Auth: sec.authn, Auditor: sec.auditor, Limits: f.limits,
	}
	if serverOptionsHook != nil {
		serverOptionsHook(opts)
	}
	srv, err := server.New(opts)
	return srv, tlsConf, tlsFiles, err
}

// reloadOnSIGHUP reloads the TLS files (certificate, key, client CAs) at
// every SIGHUP until hup is closed (at the end of serve, drain included).
// Between signals they are still reloaded when they change, at most every
// 10 s.
func reloadOnSIGHUP(hup <-chan os.Signal, files *transport.TLSFiles, log *slog.Logger) {
	for range hup {
		if files == nil {
			log.Info("SIGHUP: nothing to reload (development certificate)")
			continue
		}
		if err := files.Reload(); err != nil {
			log.Error("SIGHUP: tls reload failed; the previous certificate or CAs stay in use", "err", err)
			continue
		}
		log.Info("SIGHUP: tls files reloaded")
	}
}

// startDiskGuard watches the free space of the data dir's file system for
// --disk-free-limit (nil, which passes every check, without a data dir or
// with the limit 0).
func startDiskGuard(f *serveFlags, log *slog.Logger) (*diskfree.Guard, error) {
	if f.dataDir == "" || f.diskFreeLimit == 0 {
		return nil, nil
	}
	g, err := diskfree.Start(diskfree.Options{Dir: f.dataDir, Limit: f.diskFreeLimit, Free: diskFreeHook, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.sources.describe("disk-free-limit"), err)
	}
	return g, nil
}

// diskFreeHook replaces the operating system's free space reading in tests
// (nil: the real one).
var diskFreeHook func(dir string) (uint64, error)

// declareStreams declares the in-memory and durable streams of the flags
// (and the development defaults).
func declareStreams(b *broker.Broker, f serveFlags, syncPolicy commitlog.SyncPolicy, onSync func(time.Duration), log *slog.Logger) error {
	devMem, devDurable := f.devStreams()
	for _, k := range append(devMem, f.streams...) {
		parts := strings.Split(k, "/")
		if len(parts) != 3 {
			return fmt.Errorf("--stream %q: want tenant/namespace/name", k)
		}
		if _, err := b.DeclareStream(parts[0], parts[1], parts[2]); err != nil {
			return fmt.Errorf("--stream %q: %w", k, err)
		}
		log.Info("stream declared", "stream", k)
	}
	f.durableStreams = append(devDurable, f.durableStreams...)
	return openDurableStreams(b, f, syncPolicy, onSync, log)
}

// declareCaches creates the caches of the flags (and the development
// default), and opens the durable caches.
func declareCaches(store *cache.Store, f serveFlags, syncPolicy commitlog.SyncPolicy, onSync func(time.Duration), log *slog.Logger) error {
	if err := openDurableCaches(store, f, syncPolicy, onSync, log); err != nil {
		return err
	}
	dev := f.devCaches()
	if declares(f.durableCaches, devCache) {
		dev = nil
	}
	for _, k := range append(dev, f.caches...) {
		scope, cfg, err := parseCacheFlag(k, f.cacheMaxBytes)
		if err != nil {
			return fmt.Errorf("--cache %q: %w", k, err)
		}
		if _, err := store.Create(scope, cfg); err != nil {
			return fmt.Errorf("--cache %q: %w", k, err)
		}
		log.Info("cache declared", "cache", scope.String(), "max_bytes", cfg.MaxBytes)
	}
	return nil
}

// parseCacheFlag parses tenant/namespace/name[:max-bytes].
func parseCacheFlag(v string, defMax int64) (cache.Scope, cache.Config, error) {
	cfg := cache.Config{MaxBytes: defMax}
	name, size, hasSize := strings.Cut(v, ":")
	if hasSize {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return cache.Scope{}, cfg, fmt.Errorf("max-bytes %q is not a non-negative integer", size)
		}
		cfg.MaxBytes = n
	}
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return cache.Scope{}, cfg, fmt.Errorf("want tenant/namespace/name[:max-bytes]")
	}
	return cache.Scope{Tenant: parts[0], Namespace: parts[1], Cache: parts[2]}, cfg, nil
}

// declares reports whether a --durable-stream list names stream (with or
// without a :policy suffix).
func declares(list []string, stream string) bool {
	for _, v := range list {
		if name, _, _ := strings.Cut(v, ":"); name == stream {
			return true
		}
	}
	return false
}
