package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/transport"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Felix, side by side with NATS and a raw quic-go echo",
	}
	logBench := newLogBenchCmd() // the same benchmark as `felix log bench`
	logBench.Use = "log"
	cmd.AddCommand(newBenchPubSubCmd(), newBenchCacheCmd(), newBenchQueueCmd(), logBench)
	return cmd
}

// brokerTarget says where the benchmarked Felix broker runs.
type brokerTarget struct {
	brokerMode, addr, caFile string
	insecure                 bool
	brokerFlags              []string
}

func (b *brokerTarget) register(fl *pflag.FlagSet) {
	fl.StringVar(&b.brokerMode, "broker", "process", "where Felix runs: process (a felix serve child), embedded (this process), or external (--addr)")
	fl.StringVar(&b.addr, "addr", "", "external broker address (implies --broker external); it must have stream and cache default/default/bench")
	fl.StringVar(&b.caFile, "ca-file", "", "CA file for an external broker")
	fl.BoolVar(&b.insecure, "insecure", false, "skip certificate verification for an external broker")
	fl.StringSliceVar(&b.brokerFlags, "broker-flag", nil, "extra flag for the felix serve child, e.g. --broker-flag=--event-batch-max-delay=200us (repeatable)")
}

// startBenchBroker starts (or names) the broker under test, with stream
// default/default/bench and the cache bench.BenchCache.
func startBenchBroker(ctx context.Context, b brokerTarget) (*bench.FelixBroker, error) {
	const stream = "default/default/bench"
	if b.addr != "" {
		b.brokerMode = "external"
	}
	var fb *bench.FelixBroker
	var err error
	switch b.brokerMode {
	case "process":
		exe, e := os.Executable()
		if e != nil {
			return nil, e
		}
		fb, err = bench.StartFelixProcess(ctx, exe, append([]string{"--queue-policy", "block"}, b.brokerFlags...), stream)
	case "embedded":
		fb, err = bench.StartEmbeddedFelix(broker.Options{QueuePolicy: broker.Block}, stream)
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

type benchPubSubFlags struct {
	brokerTarget
	acked, asJSON         bool
	shared                string
	compare               []string
	fanouts               []int
	payload, batch, rate  int
	total, warmup, rounds int
	pacing                string
}

func newBenchPubSubCmd() *cobra.Command {
	var f benchPubSubFlags
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Publish→deliver latency and throughput, with optional peers in the same run",
		Long: `Measures publish→deliver latency (p50/p90/p99/p999/max) and delivered
throughput for one publisher and N subscribers. With --rate > 0 messages are
sent on a fixed schedule and latency is measured from the scheduled time
(no coordinated omission); --rate 0 publishes as fast as possible.

By default the broker runs as a separate "felix serve" process of this binary,
as NATS does. --compare nats starts a nats-server (scripts/peers.sh install),
--compare quic a raw quic-go echo (its round trip is the floor for any QUIC
request/response). Cases are interleaved per round, so every system sees the
same machine conditions.`,
		Args:    cobra.NoArgs,
		PreRunE: envPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchPubSub(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.brokerTarget.register(fl)
	fl.BoolVar(&f.acked, "acked", false, "also measure Felix with per-batch acks (each publish waits for its ack)")
	fl.StringVar(&f.shared, "sub-conns", "both", "subscriber connections: per-sub (one each), shared (one for all), or both")
	fl.StringSliceVar(&f.compare, "compare", nil, "peers to measure in the same run: nats, quic")
	fl.IntSliceVar(&f.fanouts, "fanout", []int{1, 10}, "subscriber counts")
	fl.IntVar(&f.payload, "payload", 256, "payload bytes (at least 16)")
	fl.IntVar(&f.batch, "batch", 1, "messages per publish call")
	fl.IntVar(&f.rate, "rate", 10000, "messages per second; 0 = as fast as possible")
	fl.IntVar(&f.total, "total", 20000, "measured messages per case")
	fl.IntVar(&f.warmup, "warmup", 2000, "warm-up messages per case (excluded)")
	fl.IntVar(&f.rounds, "rounds", 1, "repeat every case this many times, interleaved")
	fl.StringVar(&f.pacing, "pacing", "sleep", "fixed-rate pacing: sleep, adaptive or spin")
	fl.BoolVar(&f.asJSON, "json", false, "print the results as JSON instead of a table")
	annotateEnv(fl)
	return cmd
}

type benchCase struct {
	name string
	mk   func() bench.PubSubTarget
	only func(fanout int) bool
}

func runBenchPubSub(ctx context.Context, cmd *cobra.Command, f benchPubSubFlags) error {
	var pacing bench.Pacing
	if err := pacing.UnmarshalText([]byte(f.pacing)); err != nil {
		return fmt.Errorf("--pacing: %w", err)
	}
	log := cmd.ErrOrStderr()
	var cleanup []func() error
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	fb, err := startBenchBroker(ctx, f.brokerTarget)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, fb.Stop)
	fmt.Fprintf(log, "felix broker (%s) at %s\n", f.brokerMode, fb.Addr)
	var layouts []bool // SharedConn values
	switch f.shared {
	case "per-sub":
		layouts = []bool{false}
	case "shared":
		layouts = []bool{true}
	case "both":
		layouts = []bool{false, true}
	default:
		return fmt.Errorf("--sub-conns: want per-sub, shared or both, got %q", f.shared)
	}
	var cases []benchCase
	for _, shared := range layouts {
		cases = append(cases, benchCase{name: "felix", mk: func() bench.PubSubTarget {
			return &bench.FelixTarget{Addr: fb.Addr, TLS: fb.TLS, SharedConn: shared}
		}})
		if f.acked {
			cases = append(cases, benchCase{name: "felix-acked", mk: func() bench.PubSubTarget {
				return &bench.FelixTarget{Addr: fb.Addr, TLS: fb.TLS, Acked: true, SharedConn: shared}
			}})
		}
	}
	for _, peer := range f.compare {
		switch strings.TrimSpace(peer) {
		case "nats":
			url, stop, err := bench.StartNATS(ctx, bench.NATSServerOptions{})
			if err != nil {
				return err
			}
			cleanup = append(cleanup, stop)
			fmt.Fprintf(log, "nats-server at %s\n", url)
			for _, shared := range layouts {
				cases = append(cases, benchCase{name: "nats", mk: func() bench.PubSubTarget {
					return &bench.NATSTarget{URL: url, PendingMsgs: -1, PendingBytes: -1, SharedConn: shared}
				}})
			}
		case "quic":
			addr, stop, err := bench.StartQUICEcho(ctx)
			if err != nil {
				return err
			}
			cleanup = append(cleanup, func() error { stop(); return nil })
			cases = append(cases, benchCase{name: "quic", only: func(fanout int) bool { return fanout == 1 },
				mk: func() bench.PubSubTarget { return &bench.QUICEchoTarget{Addr: addr} }})
		case "":
		default:
			return fmt.Errorf("--compare: unknown peer %q (want nats, quic)", peer)
		}
	}
	var results []bench.PubSubResult
	for round := range max(f.rounds, 1) {
		for _, fanout := range f.fanouts {
			for _, c := range cases {
				if c.only != nil && !c.only(fanout) {
					continue
				}
				cfg := bench.PubSubConfig{Fanout: fanout, PayloadSize: f.payload, Batch: f.batch, Rate: f.rate,
					Total: f.total, Warmup: f.warmup, Pacing: pacing, Timeout: 5 * time.Minute}
				fmt.Fprintf(log, "round %d: %s fanout=%d payload=%d batch=%d rate=%s ...\n", round+1, c.name, fanout, f.payload, f.batch, rateString(f.rate))
				res, err := bench.RunPubSub(ctx, c.mk(), cfg)
				if err != nil {
					return fmt.Errorf("%s fanout %d: %w", c.name, fanout, err)
				}
				results = append(results, res)
			}
		}
	}
	if f.asJSON {
		return bench.WriteJSON(cmd.OutOrStdout(), results)
	}
	_, err = fmt.Fprint(cmd.OutOrStdout(), bench.Table{Baseline: "felix"}.Format(results))
	return err
}

func rateString(r int) string {
	if r == 0 {
		return "max"
	}
	return strconv.Itoa(r) + "/s"
}
