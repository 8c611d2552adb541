package server

import (
	"time"
)

// reportDrops logs, every interval, each subscription whose queue policy
// dropped events since the last report (one line per subscription), so a
// slow consumer is visible to operators without scraping counters.
func (s *Server) reportDrops(interval time.Duration) {
	last := map[uint64]uint64{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		seen := make(map[uint64]uint64, len(last))
		for _, st := range s.opts.Broker.Stats().Streams {
			for _, sub := range st.Subscriptions {
				seen[sub.ID] = sub.Dropped
				if d := sub.Dropped - last[sub.ID]; d > 0 {
					s.opts.Logger.Warn("subscriber queue full: events dropped",
						"subscription", sub.ID, "stream", sub.Stream.String(), "policy", sub.Policy.String(),
						"dropped", d, "dropped_total", sub.Dropped, "queue_len", sub.QueueLen, "queue_cap", sub.QueueCap)
				}
			}
		}
		last = seen
	}
}
