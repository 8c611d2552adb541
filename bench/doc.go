// Package bench is Felix's benchmark harness: load generators, latency
// histograms and reports that put Felix side by side with its peers (NATS
// core, a raw quic-go echo) in the same run on the same machine.
//
// The pieces:
//
//   - [Histogram] and [Summary]: HDR latency histograms (1 ns resolution,
//     up to 60 s, 3 significant figures), one per goroutine, merged at the end.
//   - [PubSubTarget]: the system under test for publish/subscribe fanout.
//     [NATSTarget] speaks NATS core; [QUICEchoTarget] turns a raw quic-go echo
//     into a one-subscriber "target" whose latency is a round trip.
//   - [RunPubSub]: paced (fixed-rate, coordinated-omission-free: latency
//     from the scheduled send time, see [Pacing]) or as-fast-as-possible
//     publishing with per-delivery latency, loss, duplicate and reordering
//     accounting. [RunQUICEcho] is the same for the echo's round trip.
//   - [StartNATS] and [StartQUICEcho]: peers started by the harness itself;
//     scripts/peers.sh installs, starts and stops the same peers by hand.
//   - [FormatTable] and [WriteJSON]: reports.
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
