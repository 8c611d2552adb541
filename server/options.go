package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/service"
	"github.com/felixmq/felix/transport"
)

// Identity is who an authenticated stream acts as.
type Identity struct {
	Tenant  string
	Subject string
	// Allow reports whether the identity may perform action (e.g.
	// "stream.publish") on resource (e.g. "stream:t/ns/s"). Nil allows all.
	Allow func(action, resource string) bool
	// Expires, when not zero, is when the identity's rights end (a token's
	// exp plus the verifier's leeway): the broker resets every stream the
	// identity authenticated at that instant, subscriptions and queue
	// consumers included, so a client keeps a token's rights no longer
	// than the token lives. Zero: never (dev mode, static tokens).
	Expires time.Time

	use *tenantUse // the tenant's usage record, set by the server after auth
}

func (id *Identity) allowed(action, resource string) bool {
	return id.Allow == nil || id.Allow(action, resource)
}

// authorize checks a permission; a denial goes to the server's auditor,
// which counts and logs it (who, what, on which resource; never the token).
func (c *conn) authorize(id *Identity, action, resource string) bool {
	if id.allowed(action, resource) {
		return true
	}
	c.s.opts.Auditor.Deny(auth.Denial{Subject: id.Subject, Tenant: id.Tenant, Action: action, Resource: resource, Reason: "forbidden"})
	return false
}

func (ctl *control) authorize(action, resource string) bool {
	return ctl.c.authorize(ctl.id, action, resource)
}

// Authenticator verifies the token of an auth frame.
type Authenticator interface {
	Authenticate(ctx context.Context, tenant, token string) (*Identity, error)
}

// DevAuth accepts any token for any tenant (development mode).
type DevAuth struct{}

// Authenticate accepts everything.
func (DevAuth) Authenticate(_ context.Context, tenant, _ string) (*Identity, error) {
	return &Identity{Tenant: tenant, Subject: "dev"}, nil
}

// Options configure a Server. Broker and TLS are required; every other field
// has a safe zero value.
type Options struct {
	Broker *broker.Broker
	TLS    *tls.Config
	// Transport holds the QUIC knobs (windows, stream limits, UDP buffers).
	// Its MaxIncomingStreams defaults to MaxSubscriptionsPerConn plus
	// transport.DefaultMaxIncomingStreams, so that a connection holds as
	// many queue consumers (one stream each) as subscriptions.
	Transport transport.Options
	// Auth verifies tokens. Nil means DevAuth: any token is accepted.
	Auth Authenticator
	// Caches holds the registered caches. Nil: every cache request gets the
	// reference's "cache scope not found" error.
	Caches *cache.Store
	// AutoCreateCaches creates unknown caches with DefaultCacheConfig.
	AutoCreateCaches bool
	// MaxAutoCreatedCaches: a cache is auto-created only while the store
	// holds fewer caches than this (else ErrTooManyCaches), so clients
	// naming caches at will cannot grow memory without limit. Declared
	// caches are never refused. Default 10000; negative means no limit.
	MaxAutoCreatedCaches int
	// DefaultCacheConfig configures auto-created caches.
	DefaultCacheConfig cache.Config
	// Queues configures consumer groups.
	Queues QueueOptions
	// Services configures request/reply: requests pending per connection
	// (default 1024), requests in flight per responder (default and cap
	// 64), timeouts (default 5s, cap 60s), services kept for their
	// counters without a responder (default 1000) and the clock.
	Services service.Options
	// ResponderStallTimeout bounds how long the broker's write of requests
	// to a responder (a stream that sent serve) may make no progress: a
	// responder that stops reading its stream without ending it (its
	// process hangs) blocks that write on QUIC flow control once its
	// window is full. At the bound the responder is taken out of service
	// as one whose stream write failed: its requests in flight fail with
	// responder_gone, later ones go to its service's other responders
	// (or get no_responders), and its stream is reset (code 0), so the
	// SDK serves again on a new stream. Default 5s; negative: no bound
	// (its requests end only at their timeouts).
	ResponderStallTimeout time.Duration
	// MaxFrameBytes bounds an incoming frame payload. Default 16 MiB.
	MaxFrameBytes int
	// MaxConnections bounds the broker's open connections, all tenants
	// together: one more is closed at once with "too many connections"
	// (counted in Counters.ConnectionsRefused). Default 65536, as NATS.
	MaxConnections int
	// MaxReplyBytesPerConn bounds the bytes of replies a connection's
	// control streams hold built but unwritten, waiting for the client to
	// read them: a cache read (get, mget, scan) whose largest reply would
	// not fit waits, not reading its stream further, until the client
	// reads (counted in Counters.ReplyBudgetWaits). Default
	// DefaultMaxReplyBytesPerConn (64 MiB); never less than one reply at
	// the frame limit.
	MaxReplyBytesPerConn int
	// MaxSubscriptionsPerConn bounds live subscriptions per connection.
	// Default 4096.
	MaxSubscriptionsPerConn int
	// AuthTimeout bounds how long a new stream may take to send its auth
	// frame (else it is reset and counted as an auth failure), and the
	// token check. It also bounds a connection's first authenticated
	// stream: a connection none of whose streams has authenticated
	// within AuthTimeout of its accept (a refused auth does not count) is
	// closed with "no stream authenticated within … (auth timeout)" and
	// counted in Counters.ConnectionsUnauthenticated. Default 10s.
	AuthTimeout time.Duration
	// DropReportInterval is how often subscriptions that dropped events are
	// logged. Default 10s; negative disables.
	DropReportInterval time.Duration
	// Limits bound every tenant's connections, subscriptions and publish
	// rate. The zero value is unlimited.
	Limits TenantLimits
	// TenantLimits overrides Limits for the tenants it names.
	TenantLimits map[string]TenantLimits
	// Logger receives connection and error logs. Default: discard.
	Logger *slog.Logger
	// Auditor counts and logs operations refused by permissions. Default:
	// one logging to Logger.
	Auditor *auth.Auditor
}

func (o Options) withDefaults() Options {
	if o.Auth == nil {
		o.Auth = DevAuth{}
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 65536
	}
	if o.MaxReplyBytesPerConn <= 0 {
		o.MaxReplyBytesPerConn = DefaultMaxReplyBytesPerConn
	}
	if o.MaxSubscriptionsPerConn <= 0 {
		o.MaxSubscriptionsPerConn = 4096
	}
	if o.Transport.MaxIncomingStreams == 0 {
		// A queue consumer holds a stream its client opened: a connection
		// may have as many as subscriptions, beside its other streams.
		o.Transport.MaxIncomingStreams = int64(o.MaxSubscriptionsPerConn) + transport.DefaultMaxIncomingStreams
	}
	if o.ResponderStallTimeout == 0 {
		o.ResponderStallTimeout = DefaultResponderStallTimeout
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 10 * time.Second
	}
	if o.DropReportInterval == 0 {
		o.DropReportInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Auditor == nil {
		o.Auditor = &auth.Auditor{Log: o.Logger}
	}
	return o
}
