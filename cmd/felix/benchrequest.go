package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/bench"
)

type benchRequestFlags struct {
	brokerTarget
	compare        []string
	concurrency    []int
	payload, total int
	warmup, rounds int
	timeout        time.Duration
	benchOutput
}

func newBenchRequestCmd() *cobra.Command {
	var f benchRequestFlags
	cmd := &cobra.Command{
		Use:   "request",
		Short: "Request/reply round-trip latency and requests/s, with NATS core request/reply in the same run",
		Long: `Closed-loop request/reply: N requester goroutines (--concurrency) each send
a request of --payload bytes as soon as the previous reply came back, to one
responder that echoes it; every reply is checked against its request.
Reported: the round trip of every measured request (call to return with the
reply) and requests/s over the measured phase (--warmup excluded).

Felix: the requesters share one client (Client.Request) and one responder
client serves default/benchecho with Client.Serve (echo handler,
WithMaxInFlight(64)). --compare nats starts a nats-server (scripts/peers.sh
install) and measures NATS core request/reply the same way: one requester
connection shared by the requesters (nc.RequestWithContext), one responder
connection with a queue subscriber answering m.Respond(m.Data). Cases are
interleaved per round, so every system sees the same machine conditions.
Drops count failed requests and wrong replies.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchRequest(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.brokerTarget.register(fl, "it needs no declaration (the service default/benchecho is served by this command)")
	fl.StringSliceVar(&f.compare, "compare", nil, "peers to measure in the same run: nats (NATS core request/reply)")
	f.benchOutput.register(fl)
	fl.IntSliceVar(&f.concurrency, "concurrency", []int{1, 16}, "concurrent requesters (closed loop)")
	fl.IntVar(&f.payload, "payload", bench.DefaultRequestPayloadSize, "request bytes (the echoed reply is as large)")
	fl.IntVar(&f.total, "total", bench.DefaultRequestTotal, "measured requests per case")
	fl.IntVar(&f.warmup, "warmup", 2000, "warm-up requests per case (excluded)")
	fl.IntVar(&f.rounds, "rounds", 1, "repeat every case this many times, interleaved"+zeroIsDefault)
	fl.DurationVar(&f.timeout, "timeout", bench.DefaultRequestTimeout, "limit per case and system (also every request's deadline)"+zeroIsDefault)
	annotateEnv(fl)
	return cmd
}

// requestPeers are the --compare names request accepts.
var requestPeers = map[string]string{"nats": "nats"}

func runBenchRequest(ctx context.Context, cmd *cobra.Command, f benchRequestFlags) error {
	peers, err := parseCompare(f.compare, requestPeers)
	if err != nil {
		return err
	}
	if len(f.concurrency) == 0 {
		return errors.New("--concurrency: want at least one value")
	}
	var cfgs []bench.RequestConfig
	for _, conc := range f.concurrency {
		if conc < 1 {
			return fmt.Errorf("--concurrency: want 1 or more, got %d", conc)
		}
		cfgs = append(cfgs, bench.RequestConfig{Concurrency: conc, PayloadSize: f.payload, Total: f.total,
			Warmup: f.warmup, Timeout: f.timeout})
	}
	if f.payload < 1 || f.total < 1 || f.warmup < 0 {
		return fmt.Errorf("--payload and --total: want 1 or more, --warmup 0 or more; got %d, %d, %d", f.payload, f.total, f.warmup)
	}
	var stop cleanups
	defer stop.run()
	prog := f.progress(cmd, 0)
	fb, err := startBenchBroker(ctx, f.brokerTarget)
	if err != nil {
		return err
	}
	stop.add(fb.Stop)
	prog.Logf("felix broker (%s) at %s", f.brokerMode, fb.Addr)
	targets := []func() bench.RequestTarget{func() bench.RequestTarget {
		return &bench.FelixRequestTarget{Addr: fb.Addr, TLS: fb.TLS}
	}}
	for _, peer := range peers {
		if peer == "nats" {
			url, stopNATS, err := bench.StartNATS(ctx, bench.NATSServerOptions{Env: f.serverEnv()})
			if err != nil {
				return err
			}
			stop.add(stopNATS)
			prog.Logf("nats-server at %s", url)
			targets = append(targets, func() bench.RequestTarget { return &bench.NATSRequestTarget{URL: url} })
		}
	}
	rounds := max(f.rounds, 1)
	prog = f.progress(cmd, rounds*len(cfgs)*len(targets))
	var results []bench.RequestResult
	for round := range rounds {
		for _, cfg := range cfgs {
			for _, mk := range targets {
				t := mk()
				prog.Start(fmt.Sprintf("round %d: %s %s: %d requests (+%d warm-up)", round+1, t.Name(), bench.RequestCase(cfg), cfg.Total, cfg.Warmup))
				res, err := bench.RunRequest(ctx, t, cfg)
				if err != nil {
					prog.Finish()
					return fmt.Errorf("%s %s: %w", t.Name(), bench.RequestCase(cfg), err)
				}
				results = append(results, res)
				prog.Done()
			}
		}
	}
	return emitBench(cmd, f.benchOutput, prog, "request", bench.RequestRows(results), bench.RequestNotes(results), results)
}
