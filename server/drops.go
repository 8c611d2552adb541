package server

import (
	"time"

	"github.com/felixmq/felix/broker"
)

// reportDrops logs, every interval, each subscription whose queue policy
// dropped events since the last report (one line per subscription), so a
// slow consumer is visible to operators without scraping counters.
func (s *Server) reportDrops(interval time.Duration) {
	// Keyed by stream and id; an id may be reused (a client resubscribing
	// with WithSubscriptionID): a count below the last one seen is a new
	// subscription's.
	type subKey struct {
		stream broker.StreamKey
		id     uint64
	}
	last := map[subKey]uint64{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		seen := make(map[subKey]uint64, len(last))
		for _, st := range s.opts.Broker.Stats().Streams {
			for _, sub := range st.Subscriptions {
				k := subKey{sub.Stream, sub.ID}
				seen[k] = sub.Dropped
				d := sub.Dropped
				if prev, ok := last[k]; ok && prev <= d {
					d -= prev
				}
				if d > 0 {
					s.opts.Logger.Warn("subscriber queue full: events dropped",
						"subscription", sub.ID, "stream", sub.Stream.String(), "policy", sub.Policy.String(),
						"dropped", d, "dropped_total", sub.Dropped, "queue_len", sub.QueueLen, "queue_cap", sub.QueueCap,
						"queue_bytes", sub.QueueBytes, "queue_max_bytes", sub.QueueMaxBytes)
				}
			}
		}
		last = seen
	}
}
