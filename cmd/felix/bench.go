package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/transport"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Felix, side by side with NATS, NATS JetStream, Redis and a raw quic-go echo",
		Long: `Every subcommand prints one table with the same columns: latency
p50/p90/p99/p99.9/max (HDR histograms, µs), the delivered rate and MB/s, and
drops (0 in a lossless run); warm-up is never measured. --compare runs the
same workload through peers in the same run (started here on 127.0.0.1 and
stopped by PID; install them with scripts/peers.sh install) and adds ratio
columns Felix/peer. --json prints the same rows and every case's full result
as JSON, --chart-dir writes SVG and PNG charts, and a progress bar shows on
stderr when it is a terminal (--quiet: nothing on stderr).`,
	}
	cmd.AddCommand(newBenchPubSubCmd(), newBenchMatrixCmd(), newBenchCacheCmd(), newBenchQueueCmd(), newBenchRequestCmd(), newBenchLogCmd(), newBenchSoakCmd(), newBenchQUICPeerCmd())
	return cmd
}

// newBenchQUICPeerCmd is the hidden `felix bench quic-peer`: the raw quic-go
// echo and relay (bench.StartQUICPeer) as a process of their own, which
// --compare quic starts next to a felix serve child. It prints the address
// as its first line and runs until SIGINT or SIGTERM.
func newBenchQUICPeerCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "quic-peer",
		Short:  "Run the raw quic-go echo and relay peer (started by --compare quic)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			addr, stop, err := bench.StartQUICPeer(ctx, listen)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), addr)
			<-ctx.Done()
			stop()
			return nil
		}),
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "UDP address to listen on")
	return cmd
}

// benchPreRun is the PreRunE of every benchmark (felix bench …, felix log
// bench): envPreRun, then refuseNegative. None of their numeric settings
// takes a negative value, and before, most of them took one in silence:
// --rounds -3 ran one round, --total -5 the default 10000 messages,
// --segment-bytes -1 the default segment size, as 0 does.
func benchPreRun(cmd *cobra.Command, args []string) error {
	fromArgs := map[string]bool{}
	cmd.Flags().Visit(func(f *pflag.Flag) { fromArgs[f.Name] = true })
	if err := envPreRun(cmd, args); err != nil {
		return err
	}
	if err := brokerOverEnvAddr(cmd.Flags(), fromArgs); err != nil {
		return err
	}
	sayAddrFromEnv(cmd, fromArgs)
	return refuseNegative(cmd.Flags(), fromArgs)
}

// brokerOverEnvAddr lets a --broker process or embedded given on the
// command line win over an --addr that came from the environment
// (FELIX_ADDR, which a shell profile sets for the client commands): the
// benchmark measures a broker it starts, and the address is dropped.
// Before, the address won, and the run measured the broker there. With
// --addr on the command line too, the two contradict each other: the run
// is refused. --broker external keeps the address wherever it came from,
// and without --broker on the command line an address still means
// external.
func brokerOverEnvAddr(fs *pflag.FlagSet, fromArgs map[string]bool) error {
	b, a := fs.Lookup("broker"), fs.Lookup("addr")
	if b == nil || a == nil || !fromArgs[b.Name] || a.Value.String() == "" {
		return nil
	}
	mode := b.Value.String()
	if mode != "process" && mode != "embedded" {
		return nil
	}
	if fromArgs[a.Name] {
		return fmt.Errorf("--broker %s and --addr %s: --broker %s measures a broker this command starts, --addr the external broker there; give one of them", mode, a.Value, mode)
	}
	return a.Value.Set("")
}

// sayAddrFromEnv writes a line on stderr when a benchmark's --addr came
// from its variable (FELIX_ADDR, which the client commands read too, so a
// shared shell profile sets it) and not from the command line: --addr
// makes it benchmark the broker there (--broker external) instead of one
// it starts, which nobody should find out from the numbers. Nothing is
// said when a --broker on the command line dropped it (brokerOverEnvAddr).
func sayAddrFromEnv(cmd *cobra.Command, fromArgs map[string]bool) {
	f := cmd.Flags().Lookup("addr")
	if f == nil || !f.Changed || fromArgs[f.Name] || f.Value.String() == "" {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "bench: --addr %s from %s: benchmarking the broker there (--broker external)\n", f.Value, flagEnv(f))
}

// brokerTarget says where the benchmarked Felix broker runs.
type brokerTarget struct {
	brokerMode, addr, caFile string
	insecure                 bool
	brokerFlags              []string
	serverProcs              int
}

// register adds the flags to fl; needs says what an external broker
// (--addr) must declare for the command ("the stream default/default/bench").
func (b *brokerTarget) register(fl *pflag.FlagSet, needs string) {
	fl.StringVar(&b.brokerMode, "broker", "process", "where Felix runs: process (a felix serve child), embedded (this process), or external (--addr)")
	fl.StringVar(&b.addr, "addr", "", "external broker address (implies --broker external); "+needs)
	fl.StringVar(&b.caFile, "ca-file", "", "CA file for an external broker")
	fl.BoolVar(&b.insecure, "insecure", false, "skip certificate verification for an external broker")
	fl.StringSliceVar(&b.brokerFlags, "broker-flag", nil, "extra flag for the felix serve child, e.g. --broker-flag=--event-batch-max-delay=200us (repeatable)")
	fl.IntVar(&b.serverProcs, "server-gomaxprocs", 0, "GOMAXPROCS for the server processes this command starts: the felix serve child, nats-server and the quic-go peer (0 = their default, every CPU); this process is unaffected")
}

// serverEnv is the environment the server processes a command starts get
// on top of its own: GOMAXPROCS with --server-gomaxprocs (Go servers read
// it at start). This process's environment is left alone.
func (b brokerTarget) serverEnv() []string {
	if b.serverProcs <= 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(b.serverProcs)}
}

// startBenchBroker starts (or names) the broker under test, with stream
// default/default/bench and the cache bench.BenchCache.
func startBenchBroker(ctx context.Context, b brokerTarget) (*bench.FelixBroker, error) {
	return startBenchBrokerWith(ctx, b, bench.BenchBrokerOptions{})
}

// startBenchBrokerWith is startBenchBroker with bench.BenchCache declared
// as bo says (durable or not). An external broker's cache is what it is:
// a durable one is refused there.
func startBenchBrokerWith(ctx context.Context, b brokerTarget, bo bench.BenchBrokerOptions) (*bench.FelixBroker, error) {
	const stream = "default/default/bench"
	if b.serverProcs < 0 {
		return nil, fmt.Errorf("--server-gomaxprocs: want 0 or more, got %d", b.serverProcs)
	}
	if b.addr != "" {
		b.brokerMode = "external"
	}
	if bo.DurableCache && b.brokerMode == "external" {
		return nil, errors.New("--durable needs a broker this command starts (--broker process or embedded): declare the cache of an external broker with --durable-cache yourself and leave --durable out")
	}
	var fb *bench.FelixBroker
	var err error
	switch b.brokerMode {
	case "process":
		exe, e := os.Executable()
		if e != nil {
			return nil, e
		}
		fb, err = bench.StartFelixProcessWith(ctx, exe, append([]string{"--queue-policy", "block"}, b.brokerFlags...), b.serverEnv(), bo, stream)
	case "embedded":
		fb, err = bench.StartEmbeddedFelixWith(broker.Options{QueuePolicy: broker.Block}, embeddedBrokerOptions(bo), stream)
	case "external":
		if b.addr == "" {
			return nil, errors.New("--broker external needs --addr")
		}
		tlsConf, e := transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: b.caFile, Insecure: b.insecure})
		if e != nil {
			return nil, e
		}
		fb = &bench.FelixBroker{Addr: b.addr, TLS: tlsConf, Stop: func() error { return nil }}
	default:
		return nil, fmt.Errorf("--broker: want process, embedded or external, got %q", b.brokerMode)
	}
	if err != nil {
		return nil, fmt.Errorf("start felix: %w", err)
	}
	return fb, nil
}

// embeddedBrokerOptions is bo for a broker a benchmark runs in this
// process: its durable streams' logs are opened as felix serve opens a
// --durable-stream's (streamLogOptions, serve's own code) at serve's
// default flags, as those of a felix serve child are.
func embeddedBrokerOptions(bo bench.BenchBrokerOptions) bench.BenchBrokerOptions {
	f := serveLogDefaults()
	quiet := slog.New(slog.DiscardHandler)
	bo.StreamLog = func(p commitlog.SyncPolicy) commitlog.Options { return streamLogOptions(f, p, nil, quiet) }
	return bo
}

// serveLogDefaults are serve's flags that streamLogOptions reads, at
// their defaults.
func serveLogDefaults() serveFlags {
	fs := newServeCmd().Flags()
	var f serveFlags
	f.fsyncInterval, _ = fs.GetDuration("fsync-interval")
	f.segmentBytes, _ = fs.GetInt64("segment-bytes")
	f.retentionBytes, _ = fs.GetInt64("retention-bytes")
	f.retentionAge, _ = fs.GetDuration("retention-age")
	return f
}

// pubsubSystems selects the systems a pub/sub run measures.
type pubsubSystems struct {
	brokerTarget
	acked    bool
	subConns string
	compare  []string
	pacing   string
}

func (s *pubsubSystems) register(fl *pflag.FlagSet, subConns string) {
	s.brokerTarget.register(fl, "it must declare the stream default/default/bench")
	fl.BoolVar(&s.acked, "acked", false, "also measure Felix with per-batch acks (each publish waits for its ack)")
	fl.StringVar(&s.subConns, "sub-conns", subConns, "subscriber connections: per-sub (one each), shared (one for all), or both (shared only at fanout > 1)")
	fl.StringSliceVar(&s.compare, "compare", nil, "peers to measure in the same run: nats (NATS core), nats-tls (NATS core with TLS between clients and server, as Felix always has), redis (Redis PUBLISH/SUBSCRIBE, one connection per subscriber), quic (raw quic-go: an echo round trip at fanout 1, and a relay with no broker logic at every fanout)")
	fl.StringVar(&s.pacing, "pacing", "sleep", "fixed-rate pacing: sleep, adaptive or spin")
}

// pubsubPeers are the --compare names pub/sub accepts.
var pubsubPeers = map[string]string{"nats": "nats", "nats-tls": "nats-tls", "redis": "redis", "quic": "quic", "quic-echo": "quic"}

type benchPubSubFlags struct {
	pubsubSystems
	benchOutput
	fanouts               []int
	payload, batch, rate  int
	total, warmup, rounds int
}

func newBenchPubSubCmd() *cobra.Command {
	var f benchPubSubFlags
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Publish→deliver latency and throughput, with optional peers in the same run",
		Long: `Measures publish→deliver latency (p50/p90/p99/p999/max) and delivered
throughput for one publisher and N subscribers. With --rate > 0 messages are
sent on a fixed schedule and latency is measured from the scheduled time
(no coordinated omission); --rate 0 publishes as fast as possible. --warmup
messages are delivered first and not measured.

By default the broker runs as a separate "felix serve" process of this binary,
as NATS does. --compare nats starts a nats-server (nats-tls: one that
serves TLS, as Felix always does), --compare redis a
redis-server (PUBLISH/SUBSCRIBE; install both with scripts/peers.sh install),
--compare quic the raw quic-go peer: an echo (its round trip is the floor
for any QUIC request/response; fanout 1 only) and a relay that forwards the
publisher's bytes to every subscriber with no broker logic (the floor for a
QUIC fanout). The peer runs where the broker runs: a child process, or this
process with --broker embedded. Cases are interleaved per round, so every system sees the
same machine conditions.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchPubSub(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.pubsubSystems.register(fl, "both")
	f.benchOutput.register(fl)
	fl.IntSliceVar(&f.fanouts, "fanout", []int{1, 10}, "subscriber counts"+zeroIs(1))
	fl.IntVar(&f.payload, "payload", 256, "payload bytes (at least 16)"+zeroIsDefault)
	fl.IntVar(&f.batch, "batch", 1, "messages per publish call"+zeroIsDefault)
	fl.IntVar(&f.rate, "rate", 10000, "messages per second; 0 = as fast as possible")
	fl.IntVar(&f.total, "total", 20000, "measured messages per case"+zeroIs(bench.DefaultTotal))
	fl.IntVar(&f.warmup, "warmup", 2000, "warm-up messages per case (excluded)")
	fl.IntVar(&f.rounds, "rounds", 1, "repeat every case this many times, interleaved"+zeroIsDefault)
	annotateEnv(fl)
	return cmd
}

// benchCase is one system a pub/sub run measures: mk makes a fresh
// target per case; only, when set, says which fanouts it runs.
type benchCase struct {
	mk   func() bench.PubSubTarget
	only func(fanout int) bool
}

// sharedOnly is the fanout filter of a shared-connection layout measured
// beside the per-subscriber one: at fanout 1 both are the same.
func sharedOnly(fanout int) bool { return fanout > 1 }

// pacingMode is --pacing parsed.
func (s pubsubSystems) pacingMode() (bench.Pacing, error) {
	var p bench.Pacing
	if err := p.UnmarshalText([]byte(s.pacing)); err != nil {
		return p, fmt.Errorf("--pacing: %w", err)
	}
	return p, nil
}

func runBenchPubSub(ctx context.Context, cmd *cobra.Command, f benchPubSubFlags) error {
	pacing, err := f.pacingMode()
	if err != nil {
		return err
	}
	var cfgs []bench.PubSubConfig
	for _, fanout := range f.fanouts {
		cfgs = append(cfgs, bench.PubSubConfig{Fanout: fanout, PayloadSize: f.payload, Batch: f.batch, Rate: f.rate,
			Total: f.total, Warmup: f.warmup, Pacing: pacing, Timeout: 5 * time.Minute})
	}
	return runPubSubBench(ctx, cmd, "pubsub", f.pubsubSystems, f.benchOutput, cfgs, f.rounds)
}

// runPubSubBench starts the systems, runs every case on each (rounds
// times, interleaved per round) and prints the results.
func runPubSubBench(ctx context.Context, cmd *cobra.Command, command string, sys pubsubSystems, out benchOutput,
	cfgs []bench.PubSubConfig, rounds int) error {
	rounds = max(rounds, 1)
	prog := out.progress(cmd, 0)
	systems, stop, err := startPubSubSystems(ctx, sys, prog)
	defer stop.run()
	if err != nil {
		return err
	}
	n := 0
	for _, cfg := range cfgs {
		for _, c := range systems {
			if c.only == nil || c.only(cfg.Fanout) {
				n++
			}
		}
	}
	prog = out.progress(cmd, n*rounds)
	var results []bench.PubSubResult
	for round := range rounds {
		for _, cfg := range cfgs {
			for _, c := range systems {
				if c.only != nil && !c.only(cfg.Fanout) {
					continue
				}
				t := c.mk()
				prog.Start(fmt.Sprintf("round %d: %s %s", round+1, t.Name(), bench.PubSubCase(cfg)))
				res, err := bench.RunPubSub(ctx, t, cfg)
				if err != nil {
					prog.Finish()
					return fmt.Errorf("%s %s: %w", t.Name(), bench.PubSubCase(cfg), err)
				}
				results = append(results, res)
				prog.Done()
			}
		}
	}
	return emitBench(cmd, out, prog, command, bench.PubSubRows(results), bench.PubSubNotes(results), results)
}

// startPubSubSystems starts the Felix broker and the peers named by
// --compare and returns the systems to measure; stop ends everything it
// started, also on error.
func startPubSubSystems(ctx context.Context, f pubsubSystems, prog *bench.Progress) (systems []benchCase, stop cleanups, err error) {
	peers, err := parseCompare(f.compare, pubsubPeers)
	if err != nil {
		return nil, nil, err
	}
	var layouts []bool // SharedConn values
	switch f.subConns {
	case "per-sub":
		layouts = []bool{false}
	case "shared":
		layouts = []bool{true}
	case "both":
		layouts = []bool{false, true}
	default:
		return nil, nil, fmt.Errorf("--sub-conns: want per-sub, shared or both, got %q", f.subConns)
	}
	fb, err := startBenchBroker(ctx, f.brokerTarget)
	if err != nil {
		return nil, nil, err
	}
	stop.add(fb.Stop)
	prog.Logf("felix broker (%s) at %s", f.brokerMode, fb.Addr)
	only := func(shared bool) func(int) bool {
		if shared && len(layouts) > 1 {
			return sharedOnly
		}
		return nil
	}
	for _, shared := range layouts {
		systems = append(systems, benchCase{only: only(shared), mk: func() bench.PubSubTarget {
			return &bench.FelixTarget{Addr: fb.Addr, TLS: fb.TLS, SharedConn: shared}
		}})
		if f.acked {
			systems = append(systems, benchCase{only: only(shared), mk: func() bench.PubSubTarget {
				return &bench.FelixTarget{Addr: fb.Addr, TLS: fb.TLS, Acked: true, SharedConn: shared}
			}})
		}
	}
	for _, peer := range peers {
		switch peer {
		case "nats", "nats-tls":
			opts := bench.NATSServerOptions{Env: f.serverEnv()}
			var clientTLS *tls.Config
			if peer == "nats-tls" {
				cert, pool, err := bench.LoopbackCert()
				if err != nil {
					return nil, stop, err
				}
				opts.TLS = &cert
				clientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
			}
			url, stopNATS, err := bench.StartNATS(ctx, opts)
			if err != nil {
				return nil, stop, err
			}
			stop.add(stopNATS)
			prog.Logf("nats-server at %s", url)
			for _, shared := range layouts {
				systems = append(systems, benchCase{only: only(shared), mk: func() bench.PubSubTarget {
					return &bench.NATSTarget{URL: url, PendingMsgs: -1, PendingBytes: -1, SharedConn: shared, TLS: clientTLS}
				}})
			}
		case "redis":
			addr, stopRedis, err := bench.StartRedis(ctx, bench.RedisServerOptions{})
			if err != nil {
				return nil, stop, err
			}
			stop.add(stopRedis)
			prog.Logf("redis-server at %s", addr)
			// Redis subscribers cannot share a connection: per-subscriber
			// layout only, compared with Felix's.
			systems = append(systems, benchCase{mk: func() bench.PubSubTarget { return &bench.RedisPubSubTarget{Addr: addr} }})
		case "quic":
			addr, stopPeer, err := startQUICPeer(ctx, f.brokerTarget)
			if err != nil {
				return nil, stop, err
			}
			stop.add(stopPeer)
			prog.Logf("quic-go echo and relay at %s", addr)
			systems = append(systems, benchCase{only: func(fanout int) bool { return fanout == 1 },
				mk: func() bench.PubSubTarget { return &bench.QUICEchoTarget{Addr: addr} }})
			for _, shared := range layouts {
				systems = append(systems, benchCase{only: only(shared), mk: func() bench.PubSubTarget {
					return &bench.QUICRelayTarget{Addr: addr, SharedConn: shared}
				}})
			}
		}
	}
	return systems, stop, nil
}

// startQUICPeer starts the raw quic-go peer where the broker runs: in this
// process with --broker embedded, else as a child process (a separate
// process pays the same cross-process wake-ups as felix serve and NATS).
func startQUICPeer(ctx context.Context, b brokerTarget) (string, func() error, error) {
	if b.brokerMode == "embedded" && b.addr == "" {
		addr, stop, err := bench.StartQUICPeer(ctx, "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		return addr, func() error { stop(); return nil }, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	return bench.StartQUICPeerProcess(ctx, exe, b.serverEnv())
}

func rateString(r int) string {
	if r == 0 {
		return "max"
	}
	return strconv.Itoa(r) + "/s"
}
