package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/client"
)

type benchCacheFlags struct {
	brokerTarget
	compare               []string
	ops                   []string
	concurrency           []int
	keys, value           int
	duration, warmup      time.Duration
	conns, streamsPerConn int
	rounds                int
	durable               bool
	benchOutput
}

func newBenchCacheCmd() *cobra.Command {
	var f benchCacheFlags
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Cache GET/PUT latency and ops/s, with Redis in the same run",
		Long: `Closed-loop cache workload: N workers each issue GETs (or PUTs) back to back
over a key space, recording every operation's latency. GET runs preload every
key first, so they hit. --compare redis starts a private redis-server on
127.0.0.1 (scripts/peers.sh install) driven by go-redis with the same
concurrency. Cases are interleaved per round; --warmup of each case is not
measured. Drops count failed operations, wrong values and GET misses (every
key is preloaded, so a miss is a lost value).

--durable measures both with persistence: Felix's bench cache is declared
with --durable-cache (every write logged, --fsync interval with
--fsync-interval 1s) and redis-server runs with --appendonly yes
--appendfsync everysec, its AOF in a temporary directory removed at the
end. Both lose at most about the last second on a machine crash, nothing on
a process crash. Rows are labelled felix-durable and redis-aof.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchCache(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.brokerTarget.register(fl, "it must declare the cache default/default/bench")
	fl.StringSliceVar(&f.compare, "compare", nil, "peers to measure in the same run: redis")
	f.benchOutput.register(fl)
	fl.StringSliceVar(&f.ops, "op", []string{"get", "put"}, "operations: get, put")
	fl.IntSliceVar(&f.concurrency, "concurrency", []int{1, 32}, "concurrent workers"+zeroIs(1))
	fl.IntVar(&f.keys, "keys", 10000, "key space"+zeroIsDefault)
	fl.IntVar(&f.value, "value", 256, "value bytes"+zeroIsDefault)
	fl.DurationVar(&f.duration, "duration", 5*time.Second, "measured time per case"+zeroIsDefault)
	fl.DurationVar(&f.warmup, "warmup", time.Second, "warm-up per case (excluded)")
	fl.IntVar(&f.conns, "conns", 1, "Felix SDK cache connections"+zeroIs(client.DefaultCacheConns))
	fl.IntVar(&f.streamsPerConn, "streams-per-conn", 2, "Felix SDK cache streams per connection (requests are pipelined on each)"+zeroIs(client.DefaultCacheStreamsPerConn))
	fl.IntVar(&f.rounds, "rounds", 1, "repeat every case this many times, interleaved"+zeroIsDefault)
	fl.BoolVar(&f.durable, "durable", false, "persist both: Felix's cache durable (--durable-cache, fsync every 1s), Redis with --appendonly yes --appendfsync everysec")
	annotateEnv(fl)
	return cmd
}

// cachePeers are the --compare names cache accepts.
var cachePeers = map[string]string{"redis": "redis"}

func runBenchCache(ctx context.Context, cmd *cobra.Command, f benchCacheFlags) error {
	peers, err := parseCompare(f.compare, cachePeers)
	if err != nil {
		return err
	}
	var stop cleanups
	defer stop.run()
	prog := f.progress(cmd, 0)
	felixLabel, redisLabel := "felix", "redis"
	if f.durable {
		felixLabel, redisLabel = "felix-durable", "redis-aof"
	}
	fb, err := startBenchBrokerWith(ctx, f.brokerTarget, bench.BenchBrokerOptions{DurableCache: f.durable})
	if err != nil {
		return err
	}
	stop.add(fb.Stop)
	if f.durable {
		prog.Logf("felix broker (%s) at %s, cache %s durable (fsync every %v)", f.brokerMode, fb.Addr, bench.BenchCache, bench.DefaultDurableCacheFsync)
	} else {
		prog.Logf("felix broker (%s) at %s", f.brokerMode, fb.Addr)
	}
	targets := []func() bench.CacheTarget{func() bench.CacheTarget {
		return &bench.FelixCacheTarget{Addr: fb.Addr, TLS: fb.TLS, Namespace: bench.BenchCache.Namespace,
			Cache: bench.BenchCache.Cache, Conns: f.conns, StreamsPerConn: f.streamsPerConn, Label: felixLabel}
	}}
	for _, peer := range peers {
		if peer == "redis" {
			addr, stopRedis, err := bench.StartRedis(ctx, bench.RedisServerOptions{AppendOnly: f.durable})
			if err != nil {
				return err
			}
			stop.add(stopRedis)
			if f.durable {
				prog.Logf("redis-server at %s (appendonly yes, appendfsync everysec)", addr)
			} else {
				prog.Logf("redis-server at %s", addr)
			}
			targets = append(targets, func() bench.CacheTarget { return &bench.RedisTarget{Addr: addr, Label: redisLabel} })
		}
	}
	rounds := max(f.rounds, 1)
	prog = f.progress(cmd, rounds*len(f.ops)*len(f.concurrency)*len(targets))
	var results []bench.CacheResult
	for round := range rounds {
		for _, op := range f.ops {
			for _, conc := range f.concurrency {
				for _, mk := range targets {
					t := mk()
					cfg := bench.CacheConfig{Op: op, Concurrency: conc, Keys: f.keys, ValueSize: f.value,
						Duration: f.duration, Warmup: f.warmup}
					prog.Start(fmt.Sprintf("round %d: %s %s concurrency=%d", round+1, t.Name(), op, conc))
					res, err := bench.RunCache(ctx, t, cfg)
					if err != nil {
						prog.Finish()
						return fmt.Errorf("%s %s concurrency %d: %w", t.Name(), op, conc, err)
					}
					results = append(results, res)
					prog.Done()
				}
			}
		}
	}
	return emitBench(cmd, f.benchOutput, prog, "cache", bench.CacheRows(results), bench.CacheNotes(results), results)
}
