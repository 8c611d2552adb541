package wire

// Frame flag bits. Flags 0 means a JSON message payload.
const (
	// FlagBinaryPublishBatch marks a binary publish batch (client to broker).
	FlagBinaryPublishBatch uint16 = 0x0001
	// FlagBinaryEventBatch marks a per-subscriber binary event batch that
	// carries its subscription id.
	FlagBinaryEventBatch uint16 = 0x0002
	// FlagBinaryEventBatchShared marks an encode-once event batch shared by
	// every subscriber of a stream (no subscription id).
	FlagBinaryEventBatchShared uint16 = 0x0004
	// FlagBinaryPublishAcked modifies FlagBinaryPublishBatch: the body is
	// prefixed by a u64 request id and a u8 ack mode, and an ack is owed.
	FlagBinaryPublishAcked uint16 = 0x0008
	// FlagBinaryPublishAck marks a binary publish ack (broker to client).
	FlagBinaryPublishAck uint16 = 0x0010
	// FlagEventBatchOffsets modifies the event batch flags: a u64 base
	// offset precedes the count.
	FlagEventBatchOffsets uint16 = 0x0020
)

// KnownFlags is every flag bit this implementation understands. A broker
// advertises it in auth_ok.
const KnownFlags uint16 = FlagBinaryPublishBatch | FlagBinaryEventBatch |
	FlagBinaryEventBatchShared | FlagBinaryPublishAcked | FlagBinaryPublishAck |
	FlagEventBatchOffsets

// OriginalV1Flags is the frozen capability set assumed for a peer that
// advertises nothing (an auth without client_flags).
const OriginalV1Flags uint16 = FlagBinaryPublishBatch | FlagBinaryEventBatch |
	FlagBinaryEventBatchShared

// HasUnknownFlags reports whether f sets any bit outside KnownFlags.
func HasUnknownFlags(f uint16) bool { return f&^KnownFlags != 0 }

// Supports reports whether the peer capability set includes every bit of
// required.
func Supports(peer, required uint16) bool { return peer&required == required }

// PeerFlags returns the capability set to assume for a peer that sent the
// given optional client_flags: the advertised value, or OriginalV1Flags when
// absent.
func PeerFlags(advertised *uint16) uint16 {
	if advertised == nil {
		return OriginalV1Flags
	}
	return *advertised
}

// Felix extension capabilities. They share the u16 capability space of
// client_flags/server_flags but are never set on a frame header (extension
// frames have flags of their own: FlagQueueDelivery, FlagBinaryCache). A
// broker advertises an extension only to a client that offered it, so a
// reference client sees exactly KnownFlags.
const (
	// CapCacheExt: cache_put if_absent/if_version, versions on cache_ok and
	// cache_value, cache_delete, cache_ttl, cache_mget, cache_incr,
	// cache_expire and cache_scan (added later under the same bit) and
	// cache_error.
	CapCacheExt uint16 = 0x4000
	// CapQueue: consumer groups (queue_* messages and FlagQueueDelivery
	// frames).
	CapQueue uint16 = 0x2000
	// CapCacheBin: binary cache GET and PUT (FlagBinaryCache frames, see
	// cachebin.go). Failures are still answered in JSON.
	CapCacheBin uint16 = 0x1000
	// CapMemOffsets: live event frames of in-memory streams carry base
	// offsets too (0x0024 / 0x0022), as those of durable streams do, when
	// FlagEventBatchOffsets is also negotiated. The reference sends offsets
	// for durable streams only; with them a client can resume an in-memory
	// subscription exactly where it stopped while the replay ring still
	// holds that offset.
	CapMemOffsets uint16 = 0x0800
	// CapStartTime: a subscribe may start at a point in time,
	// start {"time_ms":N} (StartTime): delivery begins at the first record
	// published at or after unix millisecond N. Without the bit such a
	// start is refused as any unknown start is (the stream is reset).
	CapStartTime uint16 = 0x0400
	// CapRequest: request/reply services (serve, serving,
	// service_request, service_reply, service_error, request, reply,
	// request_error; see service.go). Without the bit these messages are
	// refused as unknown ones are (the stream is reset).
	CapRequest uint16 = 0x0200
	// CapManage: management requests (see purge.go): stream purge
	// (stream_purge, stream_purged, stream_error), cache flush
	// (cache_flush, cache_flushed), and the start of a consumer group that
	// a queue_join creates (QueueJoin.Start). Without the bit stream_purge
	// and cache_flush are refused as unknown messages are, and a
	// queue_join with a start fails.
	CapManage uint16 = 0x0100
	// ExtensionCaps is every extension this implementation speaks.
	ExtensionCaps = CapCacheExt | CapQueue | CapCacheBin | CapMemOffsets | CapStartTime | CapRequest | CapManage
)

// FlagQueueDelivery is an extension frame flag (capability CapQueue): a
// binary batch of queue deliveries, broker to consumer. It is outside
// KnownFlags, so only readers that allow it (Reader.AllowFlags) accept it;
// brokers send it only to peers that negotiated CapQueue.
const FlagQueueDelivery uint16 = 0x0040

// FlagBinaryCache is an extension frame flag (capability CapCacheBin): one
// binary cache request (client to broker) or reply (broker to client), see
// cachebin.go. Like FlagQueueDelivery it is outside KnownFlags: only readers
// that allow it accept it, and it is only sent to a peer that negotiated
// CapCacheBin.
const FlagBinaryCache uint16 = 0x0080

// ServerFlagsFor returns the server_flags a broker answers a client that
// offered clientFlags with: KnownFlags plus the extensions both sides speak.
func ServerFlagsFor(clientFlags uint16) uint16 {
	return KnownFlags | clientFlags&ExtensionCaps
}

// SubscriptionIDInUse ends the error a broker answers a subscribe whose
// chosen subscription_id is live on the connection (ours; the reference
// never checks): "subscription id N already in use on this connection". A
// client that holds the id itself knows the broker is still reaping the
// subscription that held it, and may ask again.
const SubscriptionIDInUse = "already in use on this connection"

// Stream reset codes: the QUIC application error code a broker puts on
// RESET_STREAM and STOP_SENDING says why it ended a stream.
const (
	ResetNoError      uint64 = 0 // the broker is done with the stream
	ResetMalformed    uint64 = 1 // malformed or out-of-place input
	ResetClosing      uint64 = 2 // the broker is shutting down, or the subscription ended
	ResetTokenExpired uint64 = 3 // the token that authenticated the stream expired (ours)
)

// ConnAuthTimeout ends the reason of a broker's connection close (code 0)
// when no stream authenticated on the connection within its auth timeout
// (ours): "no stream authenticated within 10s (auth timeout)". Such a
// connection carried nothing, so a client may dial again without loss.
const ConnAuthTimeout = "(auth timeout)"

// StorageWriteFailed starts the message of a publish_error (or binary
// publish ack) when a durable stream's log could not write the publish (a
// full disk; ours): "storage write failed, publish not stored: stream
// t/ns/s: no space left on device". Nothing of it was stored, so sending
// it again makes no duplicate. A queue_error says the same with code
// QueueCodeStorage.
const StorageWriteFailed = "storage write failed"

// QueueCodeStorage is the queue_error code of an ack or nack whose group
// state could not be written (a full disk; ours).
const QueueCodeStorage = "storage"

// CacheCodeStorage is the cache_error code of a write to a durable cache
// whose log could not store it (a full disk; ours); the message starts
// with StorageWriteFailed and the entry is unchanged.
const CacheCodeStorage = "storage"
