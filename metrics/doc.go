// Package metrics exports a Felix broker's counters to Prometheus and
// serves the operator's HTTP endpoints:
//
//	GET /metrics        Prometheus text format (own registry: Felix, Go runtime, process)
//	GET /live           200 ok while the process serves HTTP
//	GET /ready          200 ok once SetReady(true); 503 starting before, 503 draining after SetDraining
//	GET /api/overview   JSON snapshot for the dashboard (Overview)
//	GET /               the web dashboard (package dashboard)
//
// The Felix metrics are read at scrape time from the components' own
// counters (broker streams and subscriptions, server connections and
// consumer groups, caches, commit logs): nothing on the data path updates
// a Prometheus object, except the fsync latency histogram (SyncHistogram),
// fed through commitlog.Options.OnSync.
//
// Cardinality. Series are labelled only by names an operator declares:
// streams (tenant, namespace, stream), consumer groups (plus group) and
// caches (tenant, namespace, cache). Subscriptions and connections are
// aggregated per stream and per broker, never labelled by id, so a broker
// exports 11 series per stream, 10 more per durable stream, 19 per consumer
// group and 9 per cache, 3 more per durable cache, plus a fixed set; at
// most MaxMetricObjects objects of each kind are exported. The
// dashboard's JSON lists subscriptions and request/reply services (whose
// names are the clients') individually, capped at MaxOverviewRows per
// list.
//
// docs/metrics.md lists every metric with its type and labels.
package metrics
