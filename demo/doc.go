// Package demo holds Felix's guided demos, the programs behind
// `felix demo NAME` and examples/: each starts a broker (embedded in this
// process on 127.0.0.1 with an ephemeral development certificate, or an
// external one at Options.Addr), drives it through a client the way an
// application would, and prints numbered steps a newcomer can follow.
//
// Every demo states claims ("received 2/2 events in order", "0 lost") and
// checks them as it goes; Run returns a *ClaimError naming every claim that
// did not hold, so a broken demo fails loudly (a non-zero exit from the
// CLI, a failed test in CI).
//
// The demos:
//
//   - simple: subscribe, publish "hello" and "world", receive both.
//   - notifications: fanout of alerts to many subscribers of two tenants,
//     each in order; a stalled subscriber loses alerts (drop_new, counted)
//     without slowing the others; the last alerts per tenant in a cache.
//   - orders: a work queue whose worker crashes mid-batch; its unacked
//     orders are redelivered to the survivors, every order is processed
//     exactly once, a poison order is dead-lettered.
//   - cache: put/get, hit and miss, TTL and its remaining-time read,
//     compare-and-set, and a small latency table.
//   - latency: the reference's latency matrix, short: fanout {1,10} ×
//     batch {1,64} × payload {0,256,1024,4096}, p50/p99/p999 and
//     delivered msgs/s per case.
//
// Against an external broker the demo prints what it needs declared
// (streams, caches, queue policy) and the `felix serve` flags that do it.
package demo
