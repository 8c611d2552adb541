package server

import (
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/queue"
	"github.com/felixmq/felix/service"
)

// GroupInfo names a consumer group and holds its counters.
type GroupInfo struct {
	Stream broker.StreamKey
	Group  string
	Stats  queue.Stats
}

// Groups returns the counters of every consumer group opened since the
// server started, in no particular order (empty after Shutdown).
func (s *Server) Groups() []GroupInfo {
	q := s.queues
	q.mu.Lock()
	out := make([]GroupInfo, 0, len(q.groups))
	gs := make([]*queue.Group, 0, len(q.groups))
	for k, g := range q.groups {
		out = append(out, GroupInfo{Stream: k.stream, Group: k.group})
		gs = append(gs, g)
	}
	q.mu.Unlock()
	for i, g := range gs { // Stats takes the group's lock: not under q.mu
		out[i].Stats = g.Stats()
	}
	return out
}

// Services returns every request/reply service the server knows: served
// now, or kept for its counters (service.Registry.Services), sorted by key.
func (s *Server) Services() []service.Info { return s.services.reg.Services() }
