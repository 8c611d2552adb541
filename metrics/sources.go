package metrics

import (
	"cmp"
	"slices"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/diskfree"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/transport"
)

// Sources are the components whose counters are read at every scrape and
// every /api/overview request. Every field is optional: a nil source's
// metrics are not exported.
type Sources struct {
	// Broker gives streams, their publish and delivery counters,
	// subscriber queues and, for streams on a commitlog.DiskLog, the log's
	// counters.
	Broker *broker.Broker
	// Server gives connections, consumer groups, request/reply services
	// and protocol and auth failure counters.
	Server *server.Server
	// Caches gives every cache's counters.
	Caches *cache.Store
	// Denials counts requests refused by authorization.
	Denials DenialCounter
	// Sync is the fsync latency histogram; pass its Observe as the
	// commitlog.Options.OnSync of the logs to measure.
	Sync *SyncHistogram
	// Follower returns the control-plane follower whose counters are
	// exported (felix_controlplane_*), or nil while there is none: a
	// broker starts serving metrics before its control plane.
	Follower func() *controlplane.Follower
	// HandshakeFailures counts the TLS handshakes the broker refused
	// (felix_tls_handshake_failures_total); pass it as the
	// transport.Options.HandshakeFailures of the broker's listener.
	HandshakeFailures *transport.HandshakeFailures
	// Disk is the broker's free-space watch (felix_disk_*), or nil.
	Disk *diskfree.Guard
}

// DenialCounter is a source of the number of requests refused by
// authorization since start.
type DenialCounter interface{ Denials() uint64 }

// DenialFunc adapts a function to DenialCounter.
type DenialFunc func() uint64

// Denials calls f.
func (f DenialFunc) Denials() uint64 { return f() }

// logStatser is a stream log that reports counters (commitlog.DiskLog).
type logStatser interface{ Stats() commitlog.Stats }

// streamSnap is one stream at one moment.
type streamSnap struct {
	broker.StreamStats
	Totals broker.SubTotals
	Log    *commitlog.Stats // nil unless the stream is on a DiskLog
}

// cacheSnap is one cache at one moment.
type cacheSnap struct {
	Scope   cache.Scope
	Durable bool // backed by a log: the cacheLogMetrics are exported
	cache.Stats
}

// snapshot is everything the sources say at one moment, sorted by name.
type snapshot struct {
	streams  []streamSnap
	groups   []server.GroupInfo
	caches   []cacheSnap
	services []service.Info
	server   *server.Counters
}

func compareKeys(a, b broker.StreamKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Stream, b.Stream))
}

// take reads every source.
func (src *Sources) take() snapshot {
	var s snapshot
	if src.Broker != nil {
		for _, st := range src.Broker.Streams() {
			sn := streamSnap{StreamStats: st.Stats(), Totals: st.SubTotals()}
			if l, ok := st.Log().(logStatser); ok {
				ls := l.Stats()
				sn.Log = &ls
			}
			s.streams = append(s.streams, sn)
		}
		slices.SortFunc(s.streams, func(a, b streamSnap) int { return compareKeys(a.Key, b.Key) })
	}
	if src.Server != nil {
		s.server = src.Server.Stats()
		s.groups = src.Server.Groups()
		s.services = src.Server.Services() // sorted
		slices.SortFunc(s.groups, func(a, b server.GroupInfo) int {
			return cmp.Or(compareKeys(a.Stream, b.Stream), cmp.Compare(a.Group, b.Group))
		})
	}
	if src.Caches != nil {
		for _, c := range src.Caches.Caches() {
			s.caches = append(s.caches, cacheSnap{Scope: c.Scope(), Durable: c.Durable(), Stats: c.Stats()})
		}
		slices.SortFunc(s.caches, func(a, b cacheSnap) int {
			return cmp.Or(cmp.Compare(a.Scope.Tenant, b.Scope.Tenant), cmp.Compare(a.Scope.Namespace, b.Scope.Namespace),
				cmp.Compare(a.Scope.Cache, b.Scope.Cache))
		})
	}
	return s
}
