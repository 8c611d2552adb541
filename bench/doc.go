// Package bench is Felix's benchmark harness: load generators, latency
// histograms, reports and charts that put Felix side by side with its peers
// (NATS core and JetStream, Redis, a raw quic-go echo and relay) in the same run on the
// same machine. `felix bench` drives it.
//
// The pieces:
//
//   - [Histogram] and [Summary]: HDR latency histograms (1 ns resolution,
//     up to 60 s, 3 significant figures), one per goroutine, merged at the end.
//   - Workloads, each with a target interface and a runner: pub/sub fanout
//     ([PubSubTarget], [RunPubSub]; [FelixTarget], [NATSTarget],
//     [RedisPubSubTarget], [QUICEchoTarget], [QUICRelayTarget]), the reference's latency grid
//     ([Matrix]), cache GET/PUT ([CacheTarget], [RunCache]), work queues
//     ([QueueTarget], [RunQueue]) and durable log appends ([RunLog]).
//     Pub/sub runs can be paced (fixed rate, coordinated-omission-free:
//     latency from the scheduled send time, see [Pacing]) or as fast as
//     possible, with per-delivery loss, duplicate and reordering accounting.
//   - Warm-up: every runner has one (messages, records, or time) that is
//     run and then dropped: no latency sample, rate or byte count of a
//     result comes from it; only loss accounting covers it.
//   - [StartNATS], [StartRedis] and [StartQUICPeer] (in this process or,
//     with [StartQUICPeerProcess], as a `felix bench quic-peer` child): peers started by the
//     harness itself on 127.0.0.1 and stopped through their own process
//     handle (by PID, never by name); scripts/peers.sh installs, starts and
//     stops the same peers by hand.
//   - Reports: every result converts to uniform [Row]s (latency
//     p50/p90/p99/p99.9/max, rate, MB/s, drops); [FormatRows] prints them as
//     one table with Felix/peer ratios, [WriteReport] as JSON
//     ([JSONReport]), [WriteCharts] as SVG and PNG charts (gonum/plot), and
//     [Progress] shows a run's progress on a terminal.
//
// scripts/bench-baseline.sh measures the peers alone (bench/baseline_test.go).
//
// Every peer listens on 127.0.0.1 only, and every run is bounded in message
// count and in time ([PubSubConfig.Timeout]).
//
// Numbers from this package are comparable only within one run on one
// machine: on a small machine, cross-CPU wake-ups alone move a loopback p50
// by tens of microseconds, so compare targets side by side, never across runs.
package bench
