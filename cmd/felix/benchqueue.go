package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/commitlog"
)

type benchQueueFlags struct {
	brokerTarget
	compare                  []string
	records, warmup          int
	consumers, payload       int
	publishBatch, window     int
	prefetch, rate, rounds   int
	fsync, natsAck, felixAck string
	timeout                  time.Duration
	benchOutput
}

func newBenchQueueCmd() *cobra.Command {
	var f benchQueueFlags
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Work-queue acked records/s and publish→ack latency, with NATS JetStream in the same run",
		Long: `One producer publishes records as fast as the system acknowledges them
(--publish-window records in flight, --publish-batch per call) while N
consumers, each on its own connection and all in one consumer group, receive
and ack every record. Reported: acked records/s over the measured phase
(warm-up excluded), publish→ack latency (from the send time stamped in the
record to the return of the consumer's ack call) and an exactly-once check:
every record must be acked once (dups 0, lost 0).

Felix uses a durable stream (default/default/queuebench, --fsync policy) and
Consumer.Next + Message.Ack. --compare jetstream (or nats) starts a nats-server with
JetStream (scripts/peers.sh install) and measures a work-queue stream with
file storage and one durable pull consumer shared by the consumers, acked
with DoubleAck (--nats-ack single: fire-and-forget Ack). An external broker
(--addr) must declare the durable stream default/default/queuebench.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runBenchQueue(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	f.brokerTarget.register(fl, "it must declare the durable stream default/default/queuebench")
	fl.StringSliceVar(&f.compare, "compare", nil, "peers to measure in the same run: jetstream (NATS JetStream; nats is an alias)")
	f.benchOutput.register(fl)
	fl.IntVar(&f.records, "records", bench.DefaultQueueRecords, "measured records per system"+zeroIsDefault)
	fl.IntVar(&f.warmup, "warmup", 2000, "warm-up records per system (acked, not measured)")
	fl.IntVar(&f.consumers, "consumers", bench.DefaultQueueConsumers, "consumers, one connection each, in one group"+zeroIsDefault)
	fl.IntVar(&f.payload, "payload", bench.DefaultQueuePayloadSize, "record bytes (at least 24)"+zeroIsDefault)
	fl.IntVar(&f.publishBatch, "publish-batch", bench.DefaultQueuePublishBatch, "records per publish call (1: single Publish)"+zeroIsDefault)
	fl.IntVar(&f.window, "publish-window", bench.DefaultQueuePublishWindow, "records published and not yet acknowledged by the system, at most (0: the default, or --publish-batch when that is larger)")
	fl.IntVar(&f.prefetch, "prefetch", bench.DefaultQueuePrefetch, "unacked deliveries per consumer (NATS: pull batch, and MaxAckPending = prefetch × consumers)"+zeroIsDefault)
	fl.IntVar(&f.rate, "rate", 0, "records per second on a fixed schedule, latency measured from the scheduled time; 0 = as fast as acknowledged (latency then includes the backlog)")
	fl.IntVar(&f.rounds, "rounds", 1, "repeat every system's run this many times, interleaved"+zeroIsDefault)
	fl.StringVar(&f.fsync, "fsync", "interval", "Felix durable stream sync policy: always, interval or never (group state is always fsynced)")
	fl.StringVar(&f.natsAck, "nats-ack", "double", "NATS consumer ack: double (DoubleAck, waits for the server) or single (Ack, fire-and-forget)")
	fl.StringVar(&f.felixAck, "felix-ack", "sync", "Felix consumer ack: sync (Message.Ack, waits for the broker) or async (Message.AckAsync, fire-and-forget)")
	fl.DurationVar(&f.timeout, "timeout", bench.DefaultQueueTimeout, "limit per system's run"+zeroIsDefault)
	annotateEnv(fl)
	return cmd
}

// queuePeers are the --compare names queue accepts: NATS JetStream, by
// any of its names (nats was the first).
var queuePeers = map[string]string{"jetstream": "jetstream", "nats": "jetstream", "nats-js": "jetstream", "js": "jetstream"}

func runBenchQueue(ctx context.Context, cmd *cobra.Command, f benchQueueFlags) error {
	policy, err := commitlog.ParseSyncPolicy(f.fsync)
	if err != nil {
		return fmt.Errorf("--fsync: %w", err)
	}
	if f.felixAck != "sync" && f.felixAck != "async" {
		return fmt.Errorf("--felix-ack: want sync or async, got %q", f.felixAck)
	}
	if f.natsAck != "double" && f.natsAck != "single" {
		return fmt.Errorf("--nats-ack: want double or single, got %q", f.natsAck)
	}
	peers, err := parseCompare(f.compare, queuePeers)
	if err != nil {
		return err
	}
	var stop cleanups
	defer stop.run()
	prog := f.progress(cmd, 0)
	var fb *bench.FelixBroker
	storage := "durable stream, fsync " + policy.String()
	switch {
	case f.brokerMode == "embedded" && f.addr == "":
		fb, err = bench.StartEmbeddedQueueFelixWith(policy, embeddedBrokerOptions(bench.BenchBrokerOptions{}), bench.QueueBenchStream)
	default:
		b := f.brokerTarget
		b.brokerFlags = append([]string{"--durable-stream", bench.QueueBenchStream, "--fsync", f.fsync}, b.brokerFlags...)
		fb, err = startBenchBroker(ctx, b)
		if b.addr != "" || b.brokerMode == "external" {
			storage = "external broker"
		}
	}
	if err != nil {
		return err
	}
	stop.add(fb.Stop)
	prog.Logf("felix broker (%s) at %s", f.brokerMode, fb.Addr)
	targets := []bench.QueueTarget{&bench.FelixQueueTarget{Addr: fb.Addr, TLS: fb.TLS, Storage: storage, AsyncAck: f.felixAck == "async"}}
	for _, peer := range peers {
		if peer == "jetstream" {
			url, stopNATS, err := bench.StartNATS(ctx, bench.NATSServerOptions{JetStream: true, Env: f.serverEnv()})
			if err != nil {
				return err
			}
			stop.add(stopNATS)
			prog.Logf("nats-server (JetStream) at %s", url)
			targets = append(targets, &bench.NATSQueueTarget{URL: url, SingleAck: f.natsAck == "single"})
		}
	}
	cfg := bench.QueueConfig{Records: f.records, Warmup: f.warmup, Consumers: f.consumers, PayloadSize: f.payload,
		PublishBatch: f.publishBatch, PublishWindow: f.window, Prefetch: f.prefetch, Rate: f.rate, Timeout: f.timeout}
	rounds := max(f.rounds, 1)
	prog = f.progress(cmd, rounds*len(targets))
	var results []bench.QueueResult
	var bad []error
	for round := range rounds {
		for _, t := range targets {
			prog.Start(fmt.Sprintf("round %d: %s: %d records (+%d warm-up), %d consumers, rate %s",
				round+1, t.Name(), f.records, f.warmup, f.consumers, rateString(f.rate)))
			res, err := bench.RunQueue(ctx, t, cfg)
			if err != nil {
				prog.Finish()
				return err
			}
			if res.Duplicates != 0 || res.Lost != 0 || res.AckErrors != 0 {
				bad = append(bad, fmt.Errorf("%s: %d duplicates, %d lost, %d ack errors", res.Target, res.Duplicates, res.Lost, res.AckErrors))
			}
			results = append(results, res)
			prog.Done()
		}
	}
	err = emitBench(cmd, f.benchOutput, prog, "queue", bench.QueueRows(results), bench.QueueNotes(results), results)
	return errors.Join(append([]error{err}, bad...)...)
}
