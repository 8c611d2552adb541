package metrics

import (
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
)

// MaxOverviewRows bounds each list of an Overview; longer lists are cut
// (sorted by name, the first rows kept) and Truncated is set.
const MaxOverviewRows = 1000

// rateInterval is the shortest time over which rates are measured; a
// request sooner after the last measurement gets the same rates.
const rateInterval = 500 * time.Millisecond

// Overview is the JSON document of GET /api/overview, the dashboard's data.
type Overview struct {
	Time          time.Time        `json:"time"`
	UptimeSeconds float64          `json:"uptime_seconds"`
	Status        string           `json:"status"` // starting, ready or draining
	Connections   ConnectionsView  `json:"connections"`
	Streams       []StreamView     `json:"streams"`
	Subscribers   []SubscriberView `json:"subscribers"`
	Groups        []GroupView      `json:"groups"`
	Caches        []CacheView      `json:"caches"`
	Truncated     bool             `json:"truncated"` // a list was longer than MaxOverviewRows
	// Disk is the free-space watch of the data dir (--disk-free-limit);
	// absent when the broker has none.
	Disk *DiskView `json:"disk,omitempty"`
}

// DiskView is the data dir's free space against the broker's floor.
type DiskView struct {
	FreeBytes  int64  `json:"free_bytes"`  // at the last look; -1 before the first
	LimitBytes int64  `json:"limit_bytes"` // the floor
	Alarm      bool   `json:"alarm"`       // below the floor: durable writes are refused
	Refused    uint64 `json:"refused"`     // writes refused by the floor since start
}

// ConnectionsView counts QUIC connections.
type ConnectionsView struct {
	Open          int64  `json:"open"`
	Total         uint64 `json:"total"`
	Subscriptions int64  `json:"subscriptions"`
}

// StreamView is one stream. Rates are events per second over the last
// measurement interval (at least 500 ms), 0 on the first request.
type StreamView struct {
	Tenant         string  `json:"tenant"`
	Namespace      string  `json:"namespace"`
	Stream         string  `json:"stream"`
	Durable        bool    `json:"durable"`
	NextOffset     uint64  `json:"next_offset"`
	Published      uint64  `json:"published"`
	PublishedBytes uint64  `json:"published_bytes"`
	Delivered      uint64  `json:"delivered"`
	Dropped        uint64  `json:"dropped"`
	Subscriptions  int     `json:"subscriptions"`
	PublishRate    float64 `json:"publish_rate"`
	DeliverRate    float64 `json:"deliver_rate"`
}

// SubscriberView is one live subscription.
type SubscriberView struct {
	ID        uint64 `json:"id"`
	Tenant    string `json:"tenant"`
	Namespace string `json:"namespace"`
	Stream    string `json:"stream"`
	Policy    string `json:"policy"`
	QueueLen  int    `json:"queue_len"`
	QueueCap  int    `json:"queue_cap"`
	Enqueued  uint64 `json:"enqueued"`
	Dropped   uint64 `json:"dropped"`
	Delivered uint64 `json:"delivered"`
	// CatchingUp: a durable subscription still replaying the log.
	CatchingUp bool `json:"catching_up,omitempty"`
}

// GroupView is one consumer group.
type GroupView struct {
	Tenant       string `json:"tenant"`
	Namespace    string `json:"namespace"`
	Stream       string `json:"stream"`
	Group        string `json:"group"`
	Members      int    `json:"members"`
	Lag          uint64 `json:"lag"`
	InFlight     int    `json:"in_flight"`
	Pending      int    `json:"pending"`
	Delivered    uint64 `json:"delivered"`
	Acked        uint64 `json:"acked"`
	Redelivered  uint64 `json:"redelivered"`
	DeadLettered uint64 `json:"dead_lettered"`
}

// CacheView is one cache. HitRate is hits / (hits + misses), 0 before any
// lookup.
type CacheView struct {
	Tenant      string  `json:"tenant"`
	Namespace   string  `json:"namespace"`
	Cache       string  `json:"cache"`
	Hits        uint64  `json:"hits"`
	Misses      uint64  `json:"misses"`
	HitRate     float64 `json:"hit_rate"`
	Evictions   uint64  `json:"evictions"`
	Expirations uint64  `json:"expirations"`
	Entries     int64   `json:"entries"`
	Bytes       int64   `json:"bytes"`
}

// rates turns the streams' counters into per-second rates between two
// measurements at least rateInterval apart.
type rates struct {
	mu     sync.Mutex
	at     time.Time                      // time of the last measurement
	counts map[broker.StreamKey][2]uint64 // published, delivered then
	rates  map[broker.StreamKey][2]float64
}

// update measures at now if the last measurement is old enough, and
// returns the current rates (read-only for the caller).
func (r *rates) update(now time.Time, streams []streamSnap) map[broker.StreamKey][2]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	dt := now.Sub(r.at)
	if r.counts != nil && dt < rateInterval {
		return r.rates
	}
	counts := make(map[broker.StreamKey][2]uint64, len(streams))
	rs := make(map[broker.StreamKey][2]float64, len(streams))
	for i := range streams {
		s := &streams[i]
		c := [2]uint64{s.Published, s.Totals.Delivered}
		counts[s.Key] = c
		if prev, ok := r.counts[s.Key]; ok && dt > 0 {
			rs[s.Key] = [2]float64{perSecond(prev[0], c[0], dt), perSecond(prev[1], c[1], dt)}
		}
	}
	r.at, r.counts, r.rates = now, counts, rs
	return rs
}

func perSecond(from, to uint64, dt time.Duration) float64 {
	if to < from { // a stream deleted and declared again
		return 0
	}
	return float64(to-from) / dt.Seconds()
}

func hitRate(hits, misses uint64) float64 {
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// capRows keeps at most MaxOverviewRows rows, setting *cut when it drops some.
func capRows[T any](rows []T, cut *bool) []T {
	if len(rows) > MaxOverviewRows {
		*cut = true
		return rows[:MaxOverviewRows]
	}
	return rows
}

// overview builds the document from one snapshot.
func (s *Server) overview() Overview {
	now := s.opts.Clock()
	snap := s.opts.Sources.take()
	o := Overview{
		Time: now, UptimeSeconds: now.Sub(s.started).Seconds(), Status: s.status().String(),
		Streams: []StreamView{}, Subscribers: []SubscriberView{}, Groups: []GroupView{}, Caches: []CacheView{},
	}
	if d := s.opts.Sources.Disk; d != nil {
		st := d.Stats()
		o.Disk = &DiskView{FreeBytes: st.Free, LimitBytes: st.Limit, Alarm: st.Low, Refused: st.Refused}
	}
	if c := snap.server; c != nil {
		o.Connections = ConnectionsView{Open: c.ConnectionsOpen.Load(), Total: c.ConnectionsTotal.Load(), Subscriptions: c.Subscriptions.Load()}
	}
	rs := s.rates.update(now, snap.streams)
	for i := range snap.streams {
		st := &snap.streams[i]
		r := rs[st.Key]
		o.Streams = append(o.Streams, StreamView{
			Tenant: st.Key.Tenant, Namespace: st.Key.Namespace, Stream: st.Key.Stream, Durable: st.Durable,
			NextOffset: st.Tail, Published: st.Published, PublishedBytes: st.PublishedBytes,
			Delivered: st.Totals.Delivered, Dropped: st.Totals.Dropped, Subscriptions: st.Totals.Subscriptions,
			PublishRate: r[0], DeliverRate: r[1],
		})
		for _, sub := range st.Subscriptions {
			o.Subscribers = append(o.Subscribers, SubscriberView{
				ID: sub.ID, Tenant: sub.Stream.Tenant, Namespace: sub.Stream.Namespace, Stream: sub.Stream.Stream,
				Policy: sub.Policy.String(), QueueLen: sub.QueueLen, QueueCap: sub.QueueCap,
				Enqueued: sub.Enqueued, Dropped: sub.Dropped, Delivered: sub.Delivered, CatchingUp: sub.CatchingUp,
			})
		}
	}
	for _, g := range snap.groups {
		o.Groups = append(o.Groups, GroupView{
			Tenant: g.Stream.Tenant, Namespace: g.Stream.Namespace, Stream: g.Stream.Stream, Group: g.Group,
			Members: g.Stats.Members, Lag: g.Stats.Lag, InFlight: g.Stats.InFlight, Pending: g.Stats.Pending,
			Delivered: g.Stats.Delivered, Acked: g.Stats.Acked, Redelivered: g.Stats.Redelivered, DeadLettered: g.Stats.DeadLettered,
		})
	}
	for _, c := range snap.caches {
		o.Caches = append(o.Caches, CacheView{
			Tenant: c.Scope.Tenant, Namespace: c.Scope.Namespace, Cache: c.Scope.Cache,
			Hits: c.Hits, Misses: c.Misses, HitRate: hitRate(c.Hits, c.Misses), Evictions: c.Evictions,
			Expirations: c.Expirations, Entries: c.Entries, Bytes: c.Bytes,
		})
	}
	o.Streams = capRows(o.Streams, &o.Truncated)
	o.Subscribers = capRows(o.Subscribers, &o.Truncated)
	o.Groups = capRows(o.Groups, &o.Truncated)
	o.Caches = capRows(o.Caches, &o.Truncated)
	return o
}
