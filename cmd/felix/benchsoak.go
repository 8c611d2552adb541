package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/bench"
)

type benchSoakFlags struct {
	brokerTarget
	out        benchOutput
	metricsURL string
	cacheBytes int64
	cfg        bench.SoakConfig
}

func newBenchSoakCmd() *cobra.Command { return benchSoakCmd(new(benchSoakFlags)) }

// zeroIsDefault ends the help of the soak's settings that
// bench.SoakConfig.WithDefaults takes 0 of for its default: a rate of 0
// is not "that workload off".
const zeroIsDefault = " (0: the default)"

// emptyIsDefault is zeroIsDefault for a string setting.
const emptyIsDefault = ` ("": the default)`

// zeroIs ends the help of a bench setting whose 0 becomes v, a value
// other than the flag's own default (the bench package's or the SDK's).
func zeroIs(v any) string { return fmt.Sprintf(" (0: %v)", v) }

// benchSoakCmd is `felix bench soak` with its flags in f.
func benchSoakCmd(f *benchSoakFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run a long mixed load on one broker and report whether its memory and goroutines stay flat",
		Long: `Runs at once, against one broker, for --duration:
  - pub/sub on an in-memory stream (--mem-rate, acked publishes) with
    --mem-readers subscribers that read everything and one that never reads,
    so its queue on the broker fills and drops (drop_new policy);
  - pub/sub on a durable stream (--durable-rate) with one subscriber, which
    must receive every acked record;
  - a queue group on a durable stream (--queue-rate): one member that nacks
    the first delivery of every --nack-every-th record, then
    --queue-consumers more; all ack alternately with Message.Ack and
    Message.AckAsync;
  - cache PUTs and GETs (--cache-rate) with TTLs between --cache-ttl-min and
    --cache-ttl-max on a cache of --cache-bytes, so entries expire and are
    evicted.
Every --sample-interval it reads the broker's process_resident_memory_bytes,
go_memstats_heap_inuse_bytes, go_memstats_heap_objects and go_goroutines
(from the felix serve child's /metrics; with --broker embedded, this
process's runtime metrics, load included) and its drop, queue and cache
counters. The report has a row per --window and a verdict: the medians of
heap in use, RSS, heap objects and goroutines over the first and the last
third of the samples after --warmup, their ratio, change and slope. The
verdict is a figure, not a pass or fail; the command fails only when the
workload broke: failed operations, acked durable records lost or delivered
twice, queue records acked twice or never, events out of order, wrong cache
values. An external broker (--addr) must declare the streams
default/default/soak-mem, the durable default/default/soak-durable and
default/default/soak-queue and the cache default/default/soak, and name its
/metrics with --metrics-url.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchSoak(ctx, cmd, *f)
		}),
	}
	fl := cmd.Flags()
	f.brokerTarget.register(fl, "it must declare the streams and the cache named above, and --metrics-url")
	fl.StringVar(&f.metricsURL, "metrics-url", "", "the /metrics URL of an external broker (--addr), e.g. http://127.0.0.1:8080/metrics")
	fl.BoolVar(&f.out.asJSON, "json", false, "print JSON (the samples, windows, verdict, workload counts and the machine) instead of the report")
	fl.BoolVar(&f.out.quiet, "quiet", false, "print nothing on stderr while running (no progress bar or lines)")
	fl.Int64Var(&f.cacheBytes, "cache-bytes", bench.DefaultSoakCacheBytes, "capacity of the soak cache on the broker this command starts")
	c := &f.cfg
	fl.DurationVar(&c.Duration, "duration", bench.DefaultSoakDuration, "how long the load runs (at most 24h)"+zeroIsDefault)
	fl.DurationVar(&c.Warmup, "warmup", 0, "time at the start left out of the memory verdict (0: 10s, or a sixth of a --duration shorter than 60s)")
	fl.DurationVar(&c.SampleInterval, "sample-interval", bench.DefaultSoakSampleInterval, "how often the broker's memory and counters are read"+zeroIsDefault)
	fl.DurationVar(&c.Window, "window", 0, "span of one report row (0: --duration/12, in whole sample intervals)")
	fl.IntVar(&c.Payload, "payload", bench.DefaultSoakPayload, "bytes per published record (at least 24)"+zeroIsDefault)
	fl.IntVar(&c.MemRate, "mem-rate", bench.DefaultSoakMemRate, "publishes per second on the in-memory stream"+zeroIsDefault)
	fl.IntVar(&c.MemReaders, "mem-readers", bench.DefaultSoakMemReaders, "subscribers of the in-memory stream that read everything (one more never reads)"+zeroIsDefault)
	fl.IntVar(&c.DurableRate, "durable-rate", bench.DefaultSoakDurableRate, "publishes per second on the durable stream"+zeroIsDefault)
	fl.IntVar(&c.QueueRate, "queue-rate", bench.DefaultSoakQueueRate, "publishes per second on the queue stream"+zeroIsDefault)
	fl.IntVar(&c.QueueConsumers, "queue-consumers", bench.DefaultSoakQueueConsumers, "group members that ack (one more nacks)"+zeroIsDefault)
	fl.IntVar(&c.NackEvery, "nack-every", bench.DefaultSoakNackEvery, "the nacking member nacks the first delivery of every Nth record"+zeroIsDefault)
	fl.DurationVar(&c.NackDelay, "nack-delay", bench.DefaultSoakNackDelay, "redelivery delay of a nack"+zeroIsDefault)
	fl.IntVar(&c.CacheRate, "cache-rate", bench.DefaultSoakCacheRate, "cache operations per second (PUT and GET alternating)"+zeroIsDefault)
	fl.IntVar(&c.CacheKeys, "cache-keys", bench.DefaultSoakCacheKeys, "cache key space"+zeroIsDefault)
	fl.IntVar(&c.CacheValue, "cache-value", bench.DefaultSoakCacheValue, "cache value bytes (at least 8)"+zeroIsDefault)
	fl.DurationVar(&c.CacheTTLMin, "cache-ttl-min", bench.DefaultSoakCacheTTLMin, "shortest PUT TTL"+zeroIsDefault)
	fl.DurationVar(&c.CacheTTLMax, "cache-ttl-max", bench.DefaultSoakCacheTTLMax, "longest PUT TTL (0: the default, or --cache-ttl-min when that is longer)")
	fl.DurationVar(&c.Drain, "drain", bench.DefaultSoakDrain, "after the load, how long to wait for the durable subscriber and the queue to catch up"+zeroIsDefault)
	annotateEnv(fl)
	return cmd
}

func runBenchSoak(ctx context.Context, cmd *cobra.Command, f benchSoakFlags) error {
	cfg, err := f.cfg.WithDefaults()
	if err != nil {
		return err
	}
	if f.cacheBytes <= 0 {
		return fmt.Errorf("--cache-bytes: want a positive capacity, got %d", f.cacheBytes)
	}
	if f.serverProcs < 0 {
		return fmt.Errorf("--server-gomaxprocs: want 0 or more, got %d", f.serverProcs)
	}
	if f.addr != "" {
		f.brokerMode = "external"
	}
	var t *bench.SoakTarget
	switch f.brokerMode {
	case "process":
		exe, e := os.Executable()
		if e != nil {
			return e
		}
		t, err = bench.StartSoakFelixProcess(ctx, exe, f.cacheBytes, f.brokerFlags, f.serverEnv())
	case "embedded":
		t, err = bench.StartEmbeddedSoakFelixWith(f.cacheBytes, 0, embeddedBrokerOptions(bench.BenchBrokerOptions{}))
	default:
		if f.addr != "" && f.metricsURL == "" {
			return errors.New("--broker external needs --metrics-url: the soak reads the broker's memory from its /metrics")
		}
		var fb *bench.FelixBroker
		if fb, err = startBenchBroker(ctx, f.brokerTarget); err == nil {
			t = bench.ExternalSoakTarget(fb, f.metricsURL)
		}
	}
	if err != nil {
		return fmt.Errorf("start felix: %w", err)
	}
	defer t.Stop()
	prog := f.out.progress(cmd, cfg.WindowCount())
	prog.Logf("felix broker (%s) at %s; soak for %s", f.brokerMode, t.Addr, cfg.Duration)
	start := time.Now()
	res, runErr := bench.RunSoak(ctx, t, cfg, prog)
	prog.Finish()
	prog.Logf("soak done in %s", time.Since(start).Round(time.Second))
	var err2 error
	if f.out.asJSON {
		err2 = bench.WriteReport(cmd.OutOrStdout(), "soak", []bench.Row{}, []bench.SoakResult{res})
	} else {
		_, err2 = fmt.Fprint(cmd.OutOrStdout(), bench.FormatSoak(res))
	}
	return errors.Join(runErr, err2)
}
