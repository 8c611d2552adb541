package metrics

import (
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/service"
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
	Services      []ServiceView    `json:"services"`
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
	// DeadLettersDropped: of DeadLettered, dropped for want of a
	// dead-letter stream; Lost: records retention or a purge removed
	// before the group finished them.
	DeadLettersDropped uint64 `json:"dead_letters_dropped"`
	Lost               uint64 `json:"lost"`
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

// ServiceView is one request/reply service: served now, or kept by the
// broker for its counters after its last responder left or when it was
// asked while nobody served it (service.Options.MaxIdleServices of those,
// 1000 by default). RequestRate is requests per second, measured like a
// stream's rates.
type ServiceView struct {
	Tenant          string  `json:"tenant"`
	Namespace       string  `json:"namespace"`
	Service         string  `json:"service"`
	Responders      int     `json:"responders"`
	InFlight        int     `json:"in_flight"` // held by its responders, timed-out ones included
	Requests        uint64  `json:"requests"`  // sent to a responder
	Replies         uint64  `json:"replies"`
	ResponderErrors uint64  `json:"responder_errors"`
	Timeouts        uint64  `json:"timeouts"`
	NoResponders    uint64  `json:"no_responders"` // refused: nobody serving with room
	ResponderGone   uint64  `json:"responder_gone"`
	Abandoned       uint64  `json:"abandoned"` // the requester went away first
	RequestRate     float64 `json:"request_rate"`
}

// rates turns counters into per-second rates between two measurements at
// least rateInterval apart.
type rates struct {
	mu                   sync.Mutex
	at                   time.Time // time of the last measurement
	measured             bool
	published, delivered meter[broker.StreamKey]
	requests             meter[service.Key]
}

// meter is one counter's rate per object.
type meter[K comparable] struct {
	counts map[K]uint64 // at the last measurement
	rates  map[K]float64
}

// measure takes counts, dt after the last measurement, and rates the
// objects that were there then.
func (m *meter[K]) measure(counts map[K]uint64, dt time.Duration) {
	rs := make(map[K]float64, len(counts))
	for k, c := range counts {
		if prev, ok := m.counts[k]; ok && dt > 0 {
			rs[k] = perSecond(prev, c, dt)
		}
	}
	m.counts, m.rates = counts, rs
}

// rateView is the rates of one measurement (read-only).
type rateView struct {
	published, delivered map[broker.StreamKey]float64
	requests             map[service.Key]float64
}

// update measures at now if the last measurement is old enough, and
// returns the current rates.
func (r *rates) update(now time.Time, snap *snapshot) rateView {
	r.mu.Lock()
	defer r.mu.Unlock()
	if dt := now.Sub(r.at); !r.measured || dt >= rateInterval {
		pub := make(map[broker.StreamKey]uint64, len(snap.streams))
		del := make(map[broker.StreamKey]uint64, len(snap.streams))
		for i := range snap.streams {
			s := &snap.streams[i]
			pub[s.Key], del[s.Key] = s.Published, s.Totals.Delivered
		}
		req := make(map[service.Key]uint64, len(snap.services))
		for _, sv := range snap.services {
			req[sv.Key] = sv.Requests
		}
		r.published.measure(pub, dt)
		r.delivered.measure(del, dt)
		r.requests.measure(req, dt)
		r.at, r.measured = now, true
	}
	return rateView{published: r.published.rates, delivered: r.delivered.rates, requests: r.requests.rates}
}

func perSecond(from, to uint64, dt time.Duration) float64 {
	if to < from { // a stream deleted and declared again, a service forgotten
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
		Services: []ServiceView{},
	}
	if d := s.opts.Sources.Disk; d != nil {
		st := d.Stats()
		o.Disk = &DiskView{FreeBytes: st.Free, LimitBytes: st.Limit, Alarm: st.Low, Refused: st.Refused}
	}
	if c := snap.server; c != nil {
		o.Connections = ConnectionsView{Open: c.ConnectionsOpen.Load(), Total: c.ConnectionsTotal.Load(), Subscriptions: c.Subscriptions.Load()}
	}
	rs := s.rates.update(now, &snap)
	for i := range snap.streams {
		st := &snap.streams[i]
		o.Streams = append(o.Streams, StreamView{
			Tenant: st.Key.Tenant, Namespace: st.Key.Namespace, Stream: st.Key.Stream, Durable: st.Durable,
			NextOffset: st.Tail, Published: st.Published, PublishedBytes: st.PublishedBytes,
			Delivered: st.Totals.Delivered, Dropped: st.Totals.Dropped, Subscriptions: st.Totals.Subscriptions,
			PublishRate: rs.published[st.Key], DeliverRate: rs.delivered[st.Key],
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
			DeadLettersDropped: g.Stats.DeadLettersDropped, Lost: g.Stats.Lost,
		})
	}
	for _, c := range snap.caches {
		o.Caches = append(o.Caches, CacheView{
			Tenant: c.Scope.Tenant, Namespace: c.Scope.Namespace, Cache: c.Scope.Cache,
			Hits: c.Hits, Misses: c.Misses, HitRate: hitRate(c.Hits, c.Misses), Evictions: c.Evictions,
			Expirations: c.Expirations, Entries: c.Entries, Bytes: c.Bytes,
		})
	}
	for _, sv := range snap.services {
		o.Services = append(o.Services, ServiceView{
			Tenant: sv.Tenant, Namespace: sv.Namespace, Service: sv.Service,
			Responders: sv.Responders, InFlight: sv.InFlight, Requests: sv.Requests, Replies: sv.Replies,
			ResponderErrors: sv.ResponderErrors, Timeouts: sv.Timeouts, NoResponders: sv.NoResponders,
			ResponderGone: sv.ResponderGone, Abandoned: sv.Abandoned, RequestRate: rs.requests[sv.Key],
		})
	}
	o.Streams = capRows(o.Streams, &o.Truncated)
	o.Subscribers = capRows(o.Subscribers, &o.Truncated)
	o.Groups = capRows(o.Groups, &o.Truncated)
	o.Caches = capRows(o.Caches, &o.Truncated)
	o.Services = capRows(o.Services, &o.Truncated)
	return o
}
