package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/bench"
)

type benchMatrixFlags struct {
	pubsubSystems
	benchOutput
	fanouts, batches, payloads []int
	count, warmup, rate        int
	rounds                     int
}

func newBenchMatrixCmd() *cobra.Command {
	var f benchMatrixFlags
	cmd := &cobra.Command{
		Use:   "matrix",
		Short: "The reference's latency-demo grid: fanout × batch × payload, with optional peers",
		Long: `Runs every combination of --fanouts × --batches × --payloads (default
{1,10} × {1,64} × {0,256,1024,4096}: 16 cases, as the reference's latency
demo) through Felix and, with --compare, the peers, and prints one table.

Batch-1 cases publish at --rate (latency from the scheduled send time; 0 = as
fast as possible); batched cases always publish as fast as possible, so their
latency columns are queueing delay, not per-message latency (as the
reference labels them). Every case delivers --warmup unmeasured messages
first, then --count measured ones. A payload below 16 bytes runs as 16: the
harness's header (send time, sequence) alone, like the reference's 16-byte
timestamp in its 0-byte case. Subscribers share one connection by default,
as in the reference's demo.

Shrink it for a quick look: felix bench matrix --fanouts 1 --batches 1,64 --payloads 256 --count 2000`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchMatrix(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.pubsubSystems.register(fl, "shared")
	f.benchOutput.register(fl)
	fl.IntSliceVar(&f.fanouts, "fanouts", bench.DefaultMatrixFanouts, "subscriber counts")
	fl.IntSliceVar(&f.batches, "batches", bench.DefaultMatrixBatches, "messages per publish call")
	fl.IntSliceVar(&f.payloads, "payloads", bench.DefaultMatrixPayloads, "payload bytes (below 16 runs as 16)")
	fl.IntVar(&f.count, "count", bench.DefaultMatrixCount, "measured messages per case")
	fl.IntVar(&f.warmup, "warmup", bench.DefaultMatrixWarmup, "warm-up messages per case (excluded; 0 for none)")
	fl.IntVar(&f.rate, "rate", 10000, "messages per second for batch-1 cases; 0 = as fast as possible")
	fl.IntVar(&f.rounds, "rounds", 1, "repeat the whole grid this many times, interleaved"+zeroIsDefault)
	annotateEnv(fl)
	return cmd
}

func runBenchMatrix(ctx context.Context, cmd *cobra.Command, f benchMatrixFlags) error {
	pacing, err := f.pacingMode()
	if err != nil {
		return err
	}
	if f.count <= 0 || f.warmup < 0 || f.rate < 0 {
		return errors.New("--count must be > 0, --warmup and --rate ≥ 0")
	}
	warmup := f.warmup
	if warmup == 0 {
		warmup = -1 // Matrix: none
	}
	m := bench.Matrix{Fanouts: f.fanouts, Batches: f.batches, Payloads: f.payloads, Count: f.count, Warmup: warmup, Rate: f.rate}
	cfgs, err := m.Cases(bench.PubSubConfig{Pacing: pacing, Timeout: 5 * time.Minute})
	if err != nil {
		return err
	}
	return runPubSubBench(ctx, cmd, "matrix", f.pubsubSystems, f.benchOutput, cfgs, f.rounds)
}
