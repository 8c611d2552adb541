package client

import (
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// Options configure a Client. The zero value connects as tenant "default"
// with token "dev", trusting the system roots for the name "localhost".
type Options struct {
	// TenantID is the tenant every stream authenticates as; all publishes
	// and subscriptions of the client are in this tenant. Default "default".
	TenantID string
	// Token is the auth token. Default "dev" (accepted by a development
	// broker).
	Token string
	// TokenSource, when set, supplies the token for every authentication
	// (each new publish, cache, event or queue stream) instead of Token,
	// for tokens that expire. A broker that verifies tokens resets the
	// streams a token opened when it expires (errors.Is(err,
	// ErrTokenExpired)). So the client rotates its publish, cache and
	// request (Client.Request) streams first: a quarter of the token's lifetime (iat to exp, at most
	// 30s) before the exp of a JWT, it calls TokenSource again, opens a new
	// stream with the token and moves new requests to it, while the old
	// stream finishes the requests in flight and is closed cleanly; no
	// request fails because a token expired, and publish order holds. A
	// token no fresher than the current one is asked for again halfway to
	// exp; opaque tokens and tokens without exp are not rotated.
	// Subscriptions, queue consumers and services (Serve) are not
	// rotated: when the broker resets them, services serve again,
	// subscriptions resume (by offset on durable streams, at
	// latest on in-memory ones) and Consume rejoins, on a new stream with a
	// fresh token (docs/security.md, token expiry). So a TokenSource that
	// returns a token valid for a while (caching it, and fetching a new
	// one once a quarter of its lifetime or 30s is left) keeps a
	// long-lived client working. It is called concurrently; ctx bounds
	// the call. Its error, wrapped in a *TokenSourceError, fails the
	// operation that needed the stream. Default nil: Token, never rotated.
	TokenSource func(ctx context.Context) (string, error)

	// TLS is the client TLS configuration. When nil, one is built from
	// CAFile, Insecure and ServerName with transport.ClientTLSConfig.
	TLS *tls.Config
	// CAFile is a PEM bundle to trust, e.g. the broker's dev-cert.pem.
	CAFile string
	// Insecure skips certificate verification (development only).
	Insecure bool
	// ServerName is the name verified in the broker certificate. Default
	// "localhost".
	ServerName string

	// Transport holds the QUIC knobs. KeepAlivePeriod defaults to 10s for
	// clients (transport.DefaultClientKeepAlivePeriod), and
	// MaxIncomingUniStreams to DefaultMaxSubscriptionsPerConn: the broker
	// opens one event stream per subscription, so this bounds the
	// subscriptions of one event connection (a broker whose
	// --max-subscriptions-per-conn is higher needs it raised to match).
	Transport transport.Options

	// PublishConns is the number of QUIC connections carrying publishes.
	// Default 2.
	PublishConns int
	// PublishStreamsPerConn is the number of long-lived authenticated
	// publish streams per publish connection. Default 2.
	PublishStreamsPerConn int
	// EventConns is the number of QUIC connections carrying subscriptions;
	// subscriptions are spread over them round-robin. Default 2.
	EventConns int
	// EventIdleTimeout is the QUIC idle timeout of the event connections
	// (subscriptions, queue consumers), which send a keep-alive every
	// third of it. A connection that only receives sends nothing a broker
	// restarted after a crash could answer with a stateless reset, so this
	// is about how long a subscriber takes to notice a broker that died
	// without closing (a killed process, a lost host) and resubscribe: up
	// to a keep-alive period more, as quic-go's timer then runs from the
	// first keep-alive that gets no answer. A publisher
	// notices at its next publish, and a stateless reset on any of the
	// client's connections makes it probe the others (one short
	// authenticated stream each), so a client that also publishes, uses
	// caches or acks brings its subscriptions back with it. Default 6s; negative keeps Transport's
	// MaxIdleTimeout and KeepAlivePeriod for event connections too. The
	// broker's side of a connection applies at least 5 s (quic-go's floor
	// on a peer's idle timeout), so a shorter value makes the client give
	// up sooner than the broker does.
	EventIdleTimeout time.Duration

	// CacheConns is the number of QUIC connections carrying cache requests,
	// dialed on first use. Default 2.
	CacheConns int
	// CacheStreamsPerConn is the number of cache streams per cache
	// connection; requests are pipelined on each. Default 4.
	CacheStreamsPerConn int
	// JSONCache keeps cache GET and PUT in JSON (cache_get/cache_put) even
	// with a broker that offers binary cache frames (capability
	// wire.CapCacheBin), which the client otherwise uses for them: they
	// spare both sides the JSON and base64 work. The zero value uses binary
	// frames whenever the broker grants them.
	JSONCache bool

	// MaxFrameBytes bounds a frame in either direction (payload bytes).
	// Default 16 MiB, as the broker.
	MaxFrameBytes int
	// SubscriptionBuffer is the default number of events buffered between
	// a subscription's stream reader and Next. When full the reader stops
	// reading, and QUIC flow control pushes back on the broker (lossless
	// here; the broker's own queue policy then applies). Default 4096.
	SubscriptionBuffer int

	// RequestTimeout bounds each wait for a broker reply (auth,
	// subscribe, publish ack) in addition to the caller's context.
	// Default 30s (the reference's ack backstop). Negative means none.
	RequestTimeout time.Duration

	// Reconnect controls redialing after a connection is lost.
	Reconnect ReconnectPolicy

	// OnDisconnect, when set, is called when the client finds one of its
	// pooled connections lost (the broker closed it, went away or stopped
	// answering) and starts redialing it; ConnEvent says which connection
	// and why (Err). The client dials on demand, so it finds a loss when
	// something needs the connection: at once for an event connection
	// that carried subscriptions, queue consumers (Consume) or services,
	// which re-establish themselves on it; at the next call for publish
	// and cache connections (one nothing uses again is never redialed,
	// nor reported). It is not called for connections the client closes
	// itself (Close), nor for an unused connection the broker closed
	// because no stream authenticated on it (see ReconnectPolicy.Disabled),
	// which is dialed again quietly. With Reconnect.Disabled it is called
	// when a call finds the connection lost (and fails with a
	// *ConnectionError); subscriptions then end without a call. Default
	// nil.
	//
	// The callbacks run one at a time on a goroutine of the client's own,
	// outside its locks, in the order of the events; each connection's
	// OnDisconnect comes before its OnReconnect. Up to ConnEventBuffer
	// events wait while a callback runs; more are dropped and counted
	// (Client.DroppedConnEvents), so a slow callback never holds up the
	// client's connections. Drops keep the events paired: a disconnect
	// is queued only with room left for its reconnect, and the reconnect
	// of a dropped disconnect is dropped too, so OnReconnect comes
	// exactly for the losses OnDisconnect was told of. A callback must
	// not call Client.Close, which waits for a callback under way to
	// return (call it from another goroutine); events still queued when
	// Close starts are not delivered.
	OnDisconnect func(ConnEvent)
	// OnReconnect, when set, is called when a redial of a connection
	// whose loss was reported to OnDisconnect succeeds (ConnEvent.Err is
	// nil; FailedDials counts the dials that failed first). Subscriptions
	// and consumers on it then resume by themselves. It runs as
	// OnDisconnect does. Default nil.
	OnReconnect func(ConnEvent)

	// Logger receives connection-level events. Default: discard.
	Logger *slog.Logger
}

// ReconnectPolicy controls redialing. The zero value reconnects with
// backoff from 50ms doubling to 2s.
type ReconnectPolicy struct {
	// Disabled turns reconnection off: once a connection is lost, calls
	// that need it fail with a *ConnectionError and subscriptions end.
	// A connection the broker closed before any stream authenticated on
	// it (an event connection unused past the broker's auth
	// timeout) is not a loss: it is dialed again even when Disabled.
	Disabled bool
	// MinBackoff is the wait after the first failed dial. Default 50ms.
	MinBackoff time.Duration
	// MaxBackoff caps the doubling wait between dial attempts. Default 2s.
	MaxBackoff time.Duration
}

// Defaults.
const (
	DefaultTenantID              = "default"
	DefaultToken                 = "dev"
	DefaultPublishConns          = 2
	DefaultPublishStreamsPerConn = 2
	DefaultEventConns            = 2
	DefaultCacheConns            = 2
	DefaultCacheStreamsPerConn   = 4
	DefaultSubscriptionBuffer    = 4096
	DefaultEventIdleTimeout      = 6 * time.Second
	DefaultRequestTimeout        = 30 * time.Second
	DefaultMinBackoff            = 50 * time.Millisecond
	DefaultMaxBackoff            = 2 * time.Second
)

// DefaultMaxSubscriptionsPerConn is the default of
// Options.Transport.MaxIncomingUniStreams: the broker's default
// --max-subscriptions-per-conn.
const DefaultMaxSubscriptionsPerConn = 4096

// Internal bounds of the event router.
const (
	// helloTimeout bounds reading the hello of a new event stream.
	helloTimeout = 5 * time.Second
	// parkTimeout is how long an event stream whose hello matches no
	// pending subscribe is kept before it is dropped (the broker then
	// reaps the subscription).
	parkTimeout = 10 * time.Second
	// maxParked bounds unmatched event streams per connection.
	maxParked = 1024
)

func (o Options) withDefaults() Options {
	o.TenantID = cmp.Or(o.TenantID, DefaultTenantID)
	o.Token = cmp.Or(o.Token, DefaultToken)
	o.Transport.KeepAlivePeriod = cmp.Or(o.Transport.KeepAlivePeriod, transport.DefaultClientKeepAlivePeriod)
	o.Transport.MaxIncomingUniStreams = cmp.Or(o.Transport.MaxIncomingUniStreams, DefaultMaxSubscriptionsPerConn)
	o.PublishConns = max(cmp.Or(o.PublishConns, DefaultPublishConns), 1)
	o.PublishStreamsPerConn = max(cmp.Or(o.PublishStreamsPerConn, DefaultPublishStreamsPerConn), 1)
	o.EventConns = max(cmp.Or(o.EventConns, DefaultEventConns), 1)
	o.EventIdleTimeout = cmp.Or(o.EventIdleTimeout, DefaultEventIdleTimeout)
	o.CacheConns = max(cmp.Or(o.CacheConns, DefaultCacheConns), 1)
	o.CacheStreamsPerConn = max(cmp.Or(o.CacheStreamsPerConn, DefaultCacheStreamsPerConn), 1)
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = wire.DefaultMaxFrameBytes
	}
	if o.SubscriptionBuffer <= 0 {
		o.SubscriptionBuffer = DefaultSubscriptionBuffer
	}
	o.RequestTimeout = cmp.Or(o.RequestTimeout, DefaultRequestTimeout)
	o.Reconnect.MinBackoff = cmp.Or(o.Reconnect.MinBackoff, DefaultMinBackoff)
	o.Reconnect.MaxBackoff = max(cmp.Or(o.Reconnect.MaxBackoff, DefaultMaxBackoff), o.Reconnect.MinBackoff)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// tlsConfig returns the TLS configuration to dial with.
func (o Options) tlsConfig() (*tls.Config, error) {
	if o.TLS != nil {
		return o.TLS, nil
	}
	return transport.ClientTLSConfig(transport.ClientTLSOptions{
		CAFile: o.CAFile, Insecure: o.Insecure, ServerName: o.ServerName,
	})
}

// PublishOption changes one Publish or PublishBatch call.
type PublishOption func(*publishConfig)

type publishConfig struct {
	ack wire.AckMode
}

// WithAck selects the acknowledgement: wire.AckPerBatch (the default) or
// wire.AckPerMessage wait for the broker's ack; wire.AckNone sends a
// fire-and-forget binary batch and returns once it is written.
func WithAck(mode wire.AckMode) PublishOption {
	return func(c *publishConfig) { c.ack = mode }
}

func newPublishConfig(opts []PublishOption) publishConfig {
	c := publishConfig{ack: wire.AckPerBatch}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// SubscribeOption changes one Subscribe call.
type SubscribeOption func(*subscribeConfig)

type subscribeConfig struct {
	start  wire.StartPosition
	id     *uint64
	buffer int
	// handler receives the events on the reader goroutine (SubscribeFunc)
	// instead of the buffer.
	handler func(Event) error
}

// FromOffset starts the subscription at offset n (replaying retained
// history). Needs a broker advertising EVENT_BATCH_OFFSETS (0x0020).
func FromOffset(n uint64) SubscribeOption {
	return func(c *subscribeConfig) { c.start = wire.StartPosition{Kind: wire.StartOffset, Offset: n} }
}

// FromEarliest starts the subscription at the oldest retained event.
// Needs a broker advertising EVENT_BATCH_OFFSETS (0x0020).
func FromEarliest() SubscribeOption {
	return func(c *subscribeConfig) { c.start = wire.StartPosition{Kind: wire.StartEarliest} }
}

// FromTime starts the subscription at the first event published at or
// after t (to the millisecond): "everything since 10:00", or with
// time.Now().Add(-5*time.Minute) the last five minutes. A t older than the
// oldest event the stream retains starts at the oldest, one in the future
// at the tail (as latest); it is never refused as out of range. The
// stream's own clock stamped its events (docs/semantics.md says what a
// clock stepped back does). Needs a broker that grants the start-time
// extension (wire.CapStartTime) and EVENT_BATCH_OFFSETS; Subscribe fails
// with ErrUnsupported otherwise, without sending the subscribe. Once an
// event has arrived, a resubscribe continues from the offset after the
// last one, not from t again.
func FromTime(t time.Time) SubscribeOption {
	return func(c *subscribeConfig) { c.start = wire.StartAt(t) }
}

// WithSubscriptionID asks the broker to use id for the subscription
// (otherwise the broker assigns one; 0 means that too). The client pairs
// each event stream the broker opens with its subscription by id alone, so
// an id names one live subscription per connection: Subscribe refuses an
// id that another subscription of the same client is using
// (ErrSubscriptionIDInUse), and the broker refuses one live on the
// connection ("subscription id N already in use on this connection") and
// skips live ids when it assigns one.
func WithSubscriptionID(id uint64) SubscribeOption {
	return func(c *subscribeConfig) { c.id = &id }
}

// WithBuffer sets this subscription's client-side event buffer (default
// Options.SubscriptionBuffer).
func WithBuffer(events int) SubscribeOption {
	return func(c *subscribeConfig) { c.buffer = events }
}
