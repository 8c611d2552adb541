package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/commitlog"
)

type benchLogFlags struct {
	logBenchFlags
	benchOutput
	warmup time.Duration
	rounds int
}

// register adds the flags `felix bench log` and `felix log bench` share.
func (f *logBenchFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.dir, "dir", os.TempDir(), "directory to create the benchmark logs in (use the disk you care about)"+emptyIsDefault)
	fl.IntVar(&f.recordBytes, "record-bytes", 256, "payload bytes per record")
	fl.IntVar(&f.batch, "batch", 1, "records per append")
	fl.IntSliceVar(&f.writers, "writers", []int{1, 16, 64}, "concurrent writers (comma-separated list)")
	fl.StringSliceVar(&f.syncs, "sync", []string{"always", "interval"}, "sync policies: always, interval, never (comma-separated list)")
	fl.DurationVar(&f.duration, "duration", 3*time.Second, "measured time per case")
	fl.DurationVar(&f.syncInterval, "sync-interval", commitlog.DefaultSyncInterval, "fsync period under the interval policy"+zeroIsDefault)
	fl.Int64Var(&f.segmentBytes, "segment-bytes", commitlog.DefaultSegmentBytes, "segment size"+zeroIsDefault)
	fl.BoolVar(&f.keep, "keep", false, "keep the benchmark logs instead of deleting them")
}

func newBenchLogCmd() *cobra.Command {
	var f benchLogFlags
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Durable log appends: records/s, MB/s and append latency per sync policy and writer count",
		Long: `Measures durable log appends on this machine's disk. For every sync policy
and writer count, a fresh log in a temporary directory under --dir takes
appends of --batch records of --record-bytes each from that many concurrent
writers: --warmup first (not measured), then --duration. An append counts once
it is acknowledged (under "always": fsynced). The table has the uniform
columns (append latency, records/s, MB/s, drops = failed appends); a note per
case gives appends/s, fsyncs/s and appends per fsync (group commit).
"felix log bench" measures the same with its own table.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchLog(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.benchOutput.register(fl)
	f.logBenchFlags.register(fl)
	fl.DurationVar(&f.warmup, "warmup", 500*time.Millisecond, "warm-up per case (excluded; 0 for none)")
	fl.IntVar(&f.rounds, "rounds", 1, "repeat every case this many times, interleaved"+zeroIsDefault)
	annotateEnv(fl)
	return cmd
}

// configs turns the flags into one config per sync policy × writer
// count, each with warmup.
func (f logBenchFlags) configs(warmup time.Duration) ([]bench.LogConfig, error) {
	if f.recordBytes < 0 || f.batch < 1 || f.duration <= 0 || warmup < 0 {
		return nil, errors.New("--record-bytes must be ≥ 0, --batch ≥ 1, --duration > 0 and --warmup ≥ 0")
	}
	var cfgs []bench.LogConfig
	for _, s := range f.syncs {
		p, err := commitlog.ParseSyncPolicy(s)
		if err != nil {
			return nil, err
		}
		for _, n := range f.writers {
			if n < 1 {
				return nil, fmt.Errorf("--writers: %d is not a writer count", n)
			}
			cfgs = append(cfgs, bench.LogConfig{Dir: f.dir, Sync: p, Writers: n, RecordBytes: f.recordBytes,
				EmptyRecords: f.recordBytes == 0, Batch: f.batch, Warmup: warmup, Duration: f.duration,
				SyncInterval: f.syncInterval, SegmentBytes: f.segmentBytes, Keep: f.keep})
		}
	}
	return cfgs, nil
}

func runBenchLog(ctx context.Context, cmd *cobra.Command, f benchLogFlags) error {
	cfgs, err := f.configs(f.warmup)
	if err != nil {
		return err
	}
	rounds := max(f.rounds, 1)
	prog := f.progress(cmd, rounds*len(cfgs))
	var results []bench.LogResult
	for round := range rounds {
		for _, cfg := range cfgs {
			prog.Start(fmt.Sprintf("round %d: sync=%s writers=%d", round+1, cfg.Sync, cfg.Writers))
			res, err := bench.RunLog(ctx, cfg)
			if err != nil {
				prog.Finish()
				return err
			}
			results = append(results, res)
			prog.Done()
		}
	}
	return emitBench(cmd, f.benchOutput, prog, "log", bench.LogRows(results), bench.LogNotes(results), results)
}
