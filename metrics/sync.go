package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// syncBuckets span an fsync on a fast NVMe drive (tens of µs) to a
// stalled disk (seconds), in seconds.
var syncBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// SyncHistogram is the fsync latency histogram of the commit logs,
// felix_storage_sync_duration_seconds. Create it before opening the logs,
// pass its Observe as their commitlog.Options.OnSync, and put it in
// Sources.Sync. It is safe for concurrent use.
type SyncHistogram struct{ h prometheus.Histogram }

// NewSyncHistogram returns an empty histogram.
func NewSyncHistogram() *SyncHistogram {
	return &SyncHistogram{h: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "felix_storage_sync_duration_seconds",
		Help:    "Duration of the commit logs' fsyncs of records, in seconds.",
		Buckets: syncBuckets,
	})}
}

// Observe records one fsync's duration.
func (s *SyncHistogram) Observe(d time.Duration) { s.h.Observe(d.Seconds()) }
