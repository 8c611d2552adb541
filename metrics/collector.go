package metrics

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/diskfree"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/transport"
)

// Label sets. Every per-object series is keyed by the object's name
// (streams, groups, caches), never by connection or subscription ids. With
// auto-create (or a permissive control plane) clients choose those names,
// so the objects exported one by one are capped at MaxMetricObjects per
// kind; felix_metrics_objects_omitted says how many were left out.
var (
	streamLabels = []string{"tenant", "namespace", "stream"}
	groupLabels  = []string{"tenant", "namespace", "stream", "group"}
	cacheLabels  = []string{"tenant", "namespace", "cache"}
)

// metric is one exported family: its description, its type and how to
// read its value from an object of type T.
type metric[T any] struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(*T) float64
}

func counter[T any](name, help string, labels []string, val func(*T) float64) metric[T] {
	return metric[T]{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue, val}
}

func gauge[T any](name, help string, labels []string, val func(*T) float64) metric[T] {
	return metric[T]{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue, val}
}

func u(v uint64) float64 { return float64(v) }

var serverMetrics = []metric[server.Counters]{
	gauge("felix_connections_open", "QUIC connections open now.", nil,
		func(c *server.Counters) float64 { return float64(c.ConnectionsOpen.Load()) }),
	counter("felix_connections_total", "QUIC connections accepted since start.", nil,
		func(c *server.Counters) float64 { return u(c.ConnectionsTotal.Load()) }),
	counter("felix_connections_refused_total", "QUIC connections closed at once because --max-connections were open.", nil,
		func(c *server.Counters) float64 { return u(c.ConnectionsRefused.Load()) }),
	counter("felix_connections_refused_draining_total", "Dials refused while the broker drained: connections closed at once with \"broker shutting down\" once their handshake completed, and dials the listener refused (CONNECTION_REFUSED; one per client address within 5s): clients redialing during a shutdown.", nil,
		func(c *server.Counters) float64 { return u(c.ConnectionsRefusedDraining.Load()) }),
	counter("felix_connections_unauthenticated_total", "QUIC connections closed because none of their streams authenticated within the auth timeout (10s by default) of their accept.", nil,
		func(c *server.Counters) float64 { return u(c.ConnectionsUnauthenticated.Load()) }),
	gauge("felix_sub_active_subscriptions", "Subscriptions being served now, over all connections.", nil,
		func(c *server.Counters) float64 { return float64(c.Subscriptions.Load()) }),
	counter("felix_subscriber_disconnect_total", "Subscriptions ended by the client or by a write error.", nil,
		func(c *server.Counters) float64 { return u(c.SubscriberResets.Load()) }),
	counter("felix_protocol_errors_total", "Malformed or out-of-place frames received.", nil,
		func(c *server.Counters) float64 { return u(c.ProtocolErrors.Load()) }),
	counter("felix_auth_failures_total", "Connections or streams refused at the auth handshake.", nil,
		func(c *server.Counters) float64 { return u(c.AuthFailures.Load()) }),
	counter("felix_tenant_mismatches_total", "Requests refused with tenant mismatch: they named a tenant other than the one their stream authenticated as.", nil,
		func(c *server.Counters) float64 { return u(c.TenantMismatches.Load()) }),
	counter("felix_token_expired_streams_total", "Streams (subscriptions and queue consumers included) reset because the token that opened them expired.", nil,
		func(c *server.Counters) float64 { return u(c.TokenExpiries.Load()) }),
	counter("felix_publish_unknown_stream_dropped_total", "Unacknowledged publishes to unknown (or just deleted) streams, dropped.", nil,
		func(c *server.Counters) float64 { return u(c.UnknownStreamDrop.Load()) }),
	counter("felix_publish_shutdown_dropped_total", "Unacknowledged publishes dropped because the broker was shutting down.", nil,
		func(c *server.Counters) float64 { return u(c.ShutdownDrop.Load()) }),
	counter("felix_subscriptions_per_connection_refused_total", "Subscribes refused because their connection had --max-subscriptions-per-conn live subscriptions.", nil,
		func(c *server.Counters) float64 { return u(c.SubscriptionsPerConnRefused.Load()) }),
	counter("felix_reply_budget_waits_total", "Cache reads that waited because their connection held its reply budget of unread replies (the client was not reading them).", nil,
		func(c *server.Counters) float64 { return u(c.ReplyBudgetWaits.Load()) }),
	counter("felix_caches_auto_create_refused_total", "Uses of a new cache name refused because --auto-create had made --auto-create-max-caches caches.", nil,
		func(c *server.Counters) float64 { return u(c.CacheAutoCreateRefused.Load()) }),
	counter("felix_publish_event_too_large_total", "Publishes refused because an event, framed for subscribers, would exceed the frame limit: acked ones got the error, unacked ones were dropped.", nil,
		func(c *server.Counters) float64 { return u(c.EventTooLargeDrop.Load()) }),
}

// serviceMetrics are request/reply's counters (server.ServiceStats).
var serviceMetrics = []metric[service.Stats]{
	counter("felix_service_requests_total", "Requests sent to a responder.", nil,
		func(s *service.Stats) float64 { return u(s.Requests) }),
	counter("felix_service_replies_total", "Responder replies passed to requesters.", nil,
		func(s *service.Stats) float64 { return u(s.Replies) }),
	counter("felix_service_responder_errors_total", "Responder errors (service_error) passed to requesters.", nil,
		func(s *service.Stats) float64 { return u(s.ResponderErrors) }),
	counter("felix_service_no_responders_total", "Requests refused at once: nobody serving the service with room.", nil,
		func(s *service.Stats) float64 { return u(s.NoResponders) }),
	counter("felix_service_limited_total", "Requests refused: the requesting connection's pending requests were at their bound.", nil,
		func(s *service.Stats) float64 { return u(s.Limited) }),
	counter("felix_service_timeouts_total", "Requests that got no answer within their timeout.", nil,
		func(s *service.Stats) float64 { return u(s.Timeouts) }),
	counter("felix_service_responder_gone_total", "Requests in flight to a responder that went away.", nil,
		func(s *service.Stats) float64 { return u(s.ResponderGone) }),
	counter("felix_service_abandoned_total", "Requests whose requester went away before their result.", nil,
		func(s *service.Stats) float64 { return u(s.Abandoned) }),
	counter("felix_service_late_replies_dropped_total", "Answers that came after their request timed out or its requester went away, dropped.", nil,
		func(s *service.Stats) float64 { return u(s.LateReplies) }),
	counter("felix_service_unknown_replies_dropped_total", "Answers to ids not in flight at that responder, dropped.", nil,
		func(s *service.Stats) float64 { return u(s.UnknownReplies) }),
	gauge("felix_service_responders", "Responders serving now, over all services.", nil,
		func(s *service.Stats) float64 { return float64(s.Responders) }),
}

var streamMetrics = []metric[streamSnap]{
	counter("felix_stream_published_events_total", "Events published to the stream.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Published) }),
	counter("felix_stream_published_bytes_total", "Payload bytes published to the stream.", streamLabels,
		func(s *streamSnap) float64 { return u(s.PublishedBytes) }),
	counter("felix_stream_publish_requests_total", "Publish requests (single or batch) to the stream.", streamLabels,
		func(s *streamSnap) float64 { return u(s.PublishCalls) }),
	counter("felix_stream_purged_events_total", "Events removed from the stream by purges (felix purge).", streamLabels,
		func(s *streamSnap) float64 { return u(s.Purged) }),
	counter("felix_stream_delivered_events_total", "Events handed to subscription writers, summed over the stream's subscriptions (ended ones included).", streamLabels,
		func(s *streamSnap) float64 { return u(s.Totals.Delivered) }),
	gauge("felix_stream_next_offset", "The offset the stream's next event gets.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Tail) }),
	gauge("felix_stream_oldest_offset", "The oldest offset the stream still holds (replay ring or log).", streamLabels,
		func(s *streamSnap) float64 { return u(s.Oldest) }),
	gauge("felix_stream_subscriptions", "Live subscriptions of the stream.", streamLabels,
		func(s *streamSnap) float64 { return float64(s.Totals.Subscriptions) }),
	gauge("felix_sub_queue_len", "Frames waiting in the stream's subscriber queues (sum over its subscriptions).", streamLabels,
		func(s *streamSnap) float64 { return float64(s.Totals.QueueLen) }),
	counter("felix_sub_queue_enqueued_total", "Events accepted into the stream's subscriber queues.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Totals.Enqueued) }),
	counter("felix_sub_queue_dropped_total", "Events the stream's subscribers did not get: dropped by their queue policy, or skipped in a replay because retention or a purge removed them.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Totals.Dropped) }),
}

// storageMetrics are exported for streams on a commitlog.DiskLog.
var storageMetrics = []metric[streamSnap]{
	counter("felix_storage_append_total", "Append calls that wrote records to the stream's log.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.Appends) }),
	counter("felix_storage_append_records_total", "Records written to the stream's log.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.Records) }),
	counter("felix_storage_append_bytes_total", "Record bytes (headers and payloads) written to the stream's log.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.Bytes) }),
	counter("felix_storage_sync_total", "fsync calls on the stream's log files and directory.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.Fsyncs) }),
	gauge("felix_storage_unsynced_records", "Records of the stream's log written but not yet fsynced.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.Next - min(s.Log.Synced, s.Log.Next)) }),
	gauge("felix_storage_segment_count", "Segment files of the stream's log.", streamLabels,
		func(s *streamSnap) float64 { return float64(s.Log.Segments) }),
	counter("felix_storage_retention_segments_deleted_total", "Segments of the stream's log deleted by retention.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.SegmentsDeleted) }),
	counter("felix_storage_record_too_large_total", "Publishes the stream refused whole because an event exceeds its log's record limit: acked ones got the error, unacked ones were dropped.", streamLabels,
		func(s *streamSnap) float64 { return u(s.TooLarge) }),
	counter("felix_storage_publishes_refused_total", "Publishes refused because the stream's log failed (it refuses every publish until the broker restarts): acked ones got the error, unacked ones were dropped.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Refused) }),
	counter("felix_storage_write_errors_total", "Appends to the stream's log not written (disk full, file too large, I/O error): publishes refused, nothing of them stored.", streamLabels,
		func(s *streamSnap) float64 { return u(s.Log.WriteErrors) }),
}

var groupMetrics = []metric[server.GroupInfo]{
	gauge("felix_queue_members", "Consumers in the group now.", groupLabels,
		func(g *server.GroupInfo) float64 { return float64(g.Stats.Members) }),
	gauge("felix_queue_lag", "Records of the stream the group has not finished (acked or dead-lettered), in flight included.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Lag) }),
	gauge("felix_queue_in_flight", "Deliveries waiting for an ack.", groupLabels,
		func(g *server.GroupInfo) float64 { return float64(g.Stats.InFlight) }),
	gauge("felix_queue_in_flight_bytes", "Payload bytes of the deliveries waiting for an ack, all consumers together (each consumer holds at most 64 MiB).", groupLabels,
		func(g *server.GroupInfo) float64 { return float64(g.Stats.InFlightBytes) }),
	counter("felix_queue_in_flight_bytes_limited_total", "Fetches that handed a consumer fewer records than its prefetch allowed, or waited, because its in-flight payload bytes were at their bound.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.InFlightBytesLimited) }),
	gauge("felix_queue_pending", "Records waiting for a redelivery.", groupLabels,
		func(g *server.GroupInfo) float64 { return float64(g.Stats.Pending) }),
	gauge("felix_queue_pending_bytes", "Payload bytes the group holds for records waiting for a redelivery (one waiting out a delay holds none: it is read again from the stream).", groupLabels,
		func(g *server.GroupInfo) float64 { return float64(g.Stats.PendingBytes) }),
	counter("felix_queue_reloaded_total", "Redeliveries whose payload was read again from the stream (dropped while the record waited out a delay).", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Reloaded) }),
	counter("felix_queue_delivered_total", "Deliveries, first ones and redeliveries.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Delivered) }),
	counter("felix_queue_acked_total", "Records acked by consumers.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Acked) }),
	counter("felix_queue_nacked_total", "Records nacked by consumers.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Nacked) }),
	counter("felix_queue_redelivered_total", "Deliveries that were not the record's first.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Redelivered) }),
	counter("felix_queue_timed_out_total", "Deliveries taken back after the ack timeout.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.TimedOut) }),
	counter("felix_queue_dead_lettered_total", "Records that exhausted their attempts and were dead-lettered.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.DeadLettered) }),
	counter("felix_queue_dead_letters_dropped_total", "Of the dead-lettered records, those whose dead letter was dropped: no dead-letter stream to keep it.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.DeadLettersDropped) }),
	counter("felix_queue_dead_letters_abandoned_total", "Dead letters a shutdown stopped waiting for (a dead-letter publish still running 5 s after it was cancelled): the record is dead-lettered again after the restart.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.DeadLettersAbandoned) }),
	counter("felix_queue_dead_letter_errors_total", "Dead letters that could not be written (the dead-letter stream refused the publish); the record waits and is tried again.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.DeadLetterErrors) }),
	counter("felix_queue_lost_total", "Records the stream dropped (retention, a purge) before the group finished them.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.Lost) }),
	counter("felix_queue_state_errors_total", "Writes of the group's durable state (acks, attempt counts, snapshots) that failed, e.g. on a full disk.", groupLabels,
		func(g *server.GroupInfo) float64 { return u(g.Stats.StateErrors) }),
}

var cacheMetrics = []metric[cacheSnap]{
	counter("felix_cache_hits_total", "Lookups that found a live entry.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Hits) }),
	counter("felix_cache_misses_total", "Lookups that found no live entry.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Misses) }),
	counter("felix_cache_evictions_total", "Live entries removed to stay under the cache's byte capacity or the store-wide --cache-max-total-bytes.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Evictions) }),
	counter("felix_cache_expirations_total", "Expired entries removed.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Expirations) }),
	counter("felix_cache_puts_total", "Successful writes.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Puts) }),
	counter("felix_cache_deletes_total", "Deletes that removed a live entry.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Deletes) }),
	counter("felix_cache_flushed_total", "Live entries removed by flushes (felix cache flush).", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Flushed) }),
	gauge("felix_cache_bytes", "Bytes accounted to the cache's entries.", cacheLabels,
		func(c *cacheSnap) float64 { return float64(c.Bytes) }),
	gauge("felix_cache_entries", "Entries stored, live or expired and not yet removed.", cacheLabels,
		func(c *cacheSnap) float64 { return float64(c.Entries) }),
}

// cacheLogMetrics are exported for durable caches (cache.Store.CreateDurable)
// only. Their log's write failures are counted here, not in
// felix_storage_write_errors_total: that family is labelled by stream, and
// a family keeps one label set.
var cacheLogMetrics = []metric[cacheSnap]{
	gauge("felix_cache_log_bytes", "About the size of the durable cache's log on disk: its size at start or after the last compaction plus the record bytes appended since.", cacheLabels,
		func(c *cacheSnap) float64 { return float64(c.LogBytes) }),
	counter("felix_cache_log_write_errors_total", "Writes to the durable cache's log that failed (disk full, file too large, I/O error): the put or delete was refused with storage write failed and the entry left as it was; a failed compaction also counts.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.LogWriteErrors) }),
	counter("felix_cache_log_compactions_total", "Compactions of the durable cache's log completed.", cacheLabels,
		func(c *cacheSnap) float64 { return u(c.Compactions) }),
}

// followerMetrics are the control-plane follower's (a broker that follows
// a control plane, embedded or remote).
// diskMetrics are exported when the broker watches its data dir's free
// space (--disk-free-limit).
var diskMetrics = []metric[diskfree.Stats]{
	gauge("felix_disk_free_bytes", "Bytes free on the data dir's file system at the last look (every second, more often near the limit).", nil,
		func(s *diskfree.Stats) float64 { return float64(s.Free) }),
	gauge("felix_disk_free_limit_bytes", "The --disk-free-limit floor: below it durable writes are refused.", nil,
		func(s *diskfree.Stats) float64 { return float64(s.Limit) }),
	gauge("felix_disk_alarm", "1 while the free space is below --disk-free-limit: publishes to durable streams and puts to durable caches are refused with storage write failed.", nil,
		func(s *diskfree.Stats) float64 { return float64(boolRank(s.Low)) }),
	counter("felix_disk_alarms_total", "Times the free space fell below --disk-free-limit.", nil,
		func(s *diskfree.Stats) float64 { return u(s.Alarms) }),
	counter("felix_disk_alarm_refusals_total", "Durable publishes and cache puts, increments and expiry changes refused because the free space was below --disk-free-limit.", nil,
		func(s *diskfree.Stats) float64 { return u(s.Refused) }),
}

var followerMetrics = []metric[controlplane.FollowerStats]{
	gauge("felix_controlplane_ready", "1 once the first full sync with the control plane completed.", nil,
		func(s *controlplane.FollowerStats) float64 { return float64(boolRank(s.Ready)) }),
	counter("felix_controlplane_syncs_total", "Completed syncs with the control plane.", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.Syncs) }),
	counter("felix_controlplane_sync_errors_total", "Syncs that failed (control plane unreachable, bad answer).", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.SyncErrors) }),
	counter("felix_controlplane_resyncs_total", "Full snapshots taken after the first (change feed trimmed, store replaced).", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.Resyncs) }),
	counter("felix_controlplane_applied_total", "Control-plane objects applied to the broker.", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.Applied) }),
	counter("felix_controlplane_apply_errors_total", "Failed attempts to apply a control-plane object (retries included).", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.ApplyErrors) }),
	gauge("felix_controlplane_failed_objects", "Control-plane objects the broker does not match yet (being retried).", nil,
		func(s *controlplane.FollowerStats) float64 { return float64(len(s.Failed)) }),
	counter("felix_controlplane_kept_objects_total", "Objects kept, with their data, that a control plane whose history changed no longer declares.", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.Kept) }),
	counter("felix_controlplane_skipped_objects_total", "Objects and changes skipped for good: names the broker refuses, changes not understood.", nil,
		func(s *controlplane.FollowerStats) float64 { return u(s.Skipped) }),
}

var (
	streamsDesc = prometheus.NewDesc("felix_streams", "Streams declared, by durability.", []string{"durable"}, nil)
	autoRefDesc = prometheus.NewDesc("felix_streams_auto_create_refused_total",
		"Streams not auto-created because the broker had --auto-create-max-streams streams: publishes and subscriptions to a new name refused (unacked publishes dropped).", nil, nil)
	denialsDesc = prometheus.NewDesc("felix_auth_denials_total", "Requests refused by authorization.", nil, nil)
	limitDesc   = prometheus.NewDesc("felix_tenant_limit_refused_total",
		"Refusals by the per-tenant limits: connections, subscriptions, publishes and their payload bytes.", []string{"limit"}, nil)
	handshakeDesc = prometheus.NewDesc("felix_tls_handshake_failures_total",
		"TLS handshakes the broker refused, by reason (client certificate refused, or other).", []string{"reason"}, nil)
	cacheMemoryDesc = prometheus.NewDesc("felix_cache_memory_bytes",
		"Bytes accounted to all caches together (keys, values and 96 bytes an entry), which --cache-max-total-bytes bounds.", nil, nil)
	cacheMemoryLimitDesc = prometheus.NewDesc("felix_cache_memory_limit_bytes",
		"--cache-max-total-bytes: the bound on felix_cache_memory_bytes (0: none).", nil, nil)
	omittedDesc = prometheus.NewDesc("felix_metrics_objects_omitted",
		"Streams, consumer groups or caches beyond MaxMetricObjects whose per-object series are not exported.", []string{"kind"}, nil)
)

// MaxMetricObjects bounds the streams, the consumer groups and the caches
// whose series /metrics exports, each (durable streams and caches first, then by
// name), so that clients creating objects with names of their choosing
// cannot grow the scrape without bound.
const MaxMetricObjects = 1000

// capObjects keeps at most MaxMetricObjects of objs and says how many it
// left out.
func capObjects[T any](objs []T) ([]T, int) {
	if len(objs) > MaxMetricObjects {
		return objs[:MaxMetricObjects], len(objs) - MaxMetricObjects
	}
	return objs, 0
}

// collector reads the sources at every scrape.
type collector struct{ src *Sources }

func describe[T any](ch chan<- *prometheus.Desc, ms []metric[T]) {
	for _, m := range ms {
		ch <- m.desc
	}
}

// emit sends obj's values of ms with labels. Label values that are not
// valid UTF-8 (names are checked where objects are created, so none
// should be) have their bad bytes replaced with U+FFFD: the client
// library would panic on them, taking the broker down with a scrape.
func emit[T any](ch chan<- prometheus.Metric, ms []metric[T], obj *T, labels ...string) {
	for i, l := range labels {
		if !utf8.ValidString(l) {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD")
		}
	}
	for _, m := range ms {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(obj), labels...)
	}
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, serverMetrics)
	describe(ch, serviceMetrics)
	describe(ch, streamMetrics)
	describe(ch, storageMetrics)
	describe(ch, groupMetrics)
	describe(ch, cacheMetrics)
	describe(ch, cacheLogMetrics)
	describe(ch, followerMetrics)
	describe(ch, diskMetrics)
	ch <- streamsDesc
	ch <- autoRefDesc
	ch <- denialsDesc
	ch <- limitDesc
	ch <- handshakeDesc
	ch <- omittedDesc
	ch <- cacheMemoryDesc
	ch <- cacheMemoryLimitDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.take()
	if s.server != nil {
		emit(ch, serverMetrics, s.server)
		st := c.src.Server.ServiceStats()
		emit(ch, serviceMetrics, &st)
		l := c.src.Server.LimitStats()
		for name, n := range map[string]uint64{
			"connections": l.Connections.Load(), "subscriptions": l.Subscriptions.Load(),
			"publishes": l.Publishes.Load(), "publish_bytes": l.PublishBytes.Load(),
		} {
			ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.CounterValue, u(n), name)
		}
	}
	if c.src.Follower != nil {
		if f := c.src.Follower(); f != nil {
			st := f.Stats()
			emit(ch, followerMetrics, &st)
		}
	}
	if c.src.Disk != nil {
		st := c.src.Disk.Stats()
		emit(ch, diskMetrics, &st)
	}
	if c.src.Denials != nil {
		ch <- prometheus.MustNewConstMetric(denialsDesc, prometheus.CounterValue, u(c.src.Denials.Denials()))
	}
	if c.src.HandshakeFailures != nil {
		n := c.src.HandshakeFailures.Counts()
		for _, reason := range transport.HandshakeFailureReasons() {
			ch <- prometheus.MustNewConstMetric(handshakeDesc, prometheus.CounterValue, u(n[reason]), reason)
		}
	}
	if c.src.Broker != nil {
		durable := map[bool]int{}
		for i := range s.streams {
			durable[s.streams[i].Durable]++
		}
		for _, d := range []bool{false, true} {
			ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(durable[d]), strconv.FormatBool(d))
		}
		ch <- prometheus.MustNewConstMetric(autoRefDesc, prometheus.CounterValue, u(c.src.Broker.AutoCreateRefused()))
	}
	if c.src.Caches != nil {
		used, limit := c.src.Caches.MemoryBytes()
		ch <- prometheus.MustNewConstMetric(cacheMemoryDesc, prometheus.GaugeValue, float64(used))
		ch <- prometheus.MustNewConstMetric(cacheMemoryLimitDesc, prometheus.GaugeValue, float64(limit))
	}
	// Durable streams and caches first (stable: by name within each kind).
	slices.SortStableFunc(s.streams, func(a, b streamSnap) int {
		return cmp.Compare(boolRank(!a.Durable), boolRank(!b.Durable))
	})
	slices.SortStableFunc(s.caches, func(a, b cacheSnap) int {
		return cmp.Compare(boolRank(!a.Durable), boolRank(!b.Durable))
	})
	streams, omittedStreams := capObjects(s.streams)
	groups, omittedGroups := capObjects(s.groups)
	caches, omittedCaches := capObjects(s.caches)
	for i := range streams {
		st := &streams[i]
		emit(ch, streamMetrics, st, st.Key.Tenant, st.Key.Namespace, st.Key.Stream)
		if st.Log != nil {
			emit(ch, storageMetrics, st, st.Key.Tenant, st.Key.Namespace, st.Key.Stream)
		}
	}
	for i := range groups {
		g := &groups[i]
		emit(ch, groupMetrics, g, g.Stream.Tenant, g.Stream.Namespace, g.Stream.Stream, g.Group)
	}
	for i := range caches {
		k := &caches[i]
		emit(ch, cacheMetrics, k, k.Scope.Tenant, k.Scope.Namespace, k.Scope.Cache)
		if k.Durable {
			emit(ch, cacheLogMetrics, k, k.Scope.Tenant, k.Scope.Namespace, k.Scope.Cache)
		}
	}
	for _, o := range []struct {
		kind    string
		present bool
		n       int
	}{{"stream", c.src.Broker != nil, omittedStreams}, {"group", c.src.Server != nil, omittedGroups}, {"cache", c.src.Caches != nil, omittedCaches}} {
		if o.present {
			ch <- prometheus.MustNewConstMetric(omittedDesc, prometheus.GaugeValue, float64(o.n), o.kind)
		}
	}
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
