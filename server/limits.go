package server

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// TenantLimits bound what one tenant may use on this broker. A zero field
// means no limit.
type TenantLimits struct {
	// MaxConnections bounds the connections that have at least one stream
	// authenticated for the tenant. Auth on a stream of one more connection
	// is refused with "tenant connection limit exceeded".
	MaxConnections int
	// MaxSubscriptions bounds the tenant's live subscriptions (stream
	// subscriptions and queue consumers). One more is refused with "tenant
	// subscription limit exceeded".
	MaxSubscriptions int
	// PublishBytesPerSec bounds the tenant's published payload bytes per
	// second (a token bucket). A publish over it is refused whole: acked
	// publishes get "tenant publish rate exceeded", unacked ones are dropped.
	// Both are counted.
	PublishBytesPerSec int64
	// PublishBurstBytes is the bucket size. Default: one second's worth, and
	// never less than the largest frame.
	PublishBurstBytes int64
}

// LimitCounters count refusals by the tenant limits.
type LimitCounters struct {
	Connections   atomic.Uint64
	Subscriptions atomic.Uint64
	Publishes     atomic.Uint64
	PublishBytes  atomic.Uint64
}

// Errors of the tenant limits; their texts are what clients see.
var (
	ErrTenantConnLimit = errors.New("tenant connection limit exceeded")
	ErrTenantSubLimit  = errors.New("tenant subscription limit exceeded")
	ErrTenantRateLimit = errors.New("tenant publish rate exceeded")
)

// tenantUse is the live usage of one tenant. A record with nothing live
// (no connection, no subscription, a full publish bucket) is dropped, so
// tenants named at will cannot grow the map without bound.
type tenantUse struct {
	tenant string
	limits TenantLimits
	conns  int // guarded by tenants.mu
	subs   atomic.Int64
	bucket *rate.Limiter // nil: unlimited
}

// tenants tracks usage per tenant for the limits.
type tenants struct {
	def      TenantLimits
	per      map[string]TenantLimits
	maxFrame int
	counters *LimitCounters
	now      func() time.Time

	mu  sync.Mutex
	use map[string]*tenantUse
}

func newTenants(o Options, c *LimitCounters) *tenants {
	return &tenants{def: o.Limits, per: o.TenantLimits, maxFrame: o.MaxFrameBytes, counters: c,
		now: time.Now, use: map[string]*tenantUse{}}
}

// getLocked returns the usage record of a tenant, creating it. Called with
// t.mu held.
func (t *tenants) getLocked(tenant string) *tenantUse {
	u := t.use[tenant]
	if u != nil {
		return u
	}
	l, ok := t.per[tenant]
	if !ok {
		l = t.def
	}
	u = &tenantUse{tenant: tenant, limits: l}
	if l.PublishBytesPerSec > 0 {
		burst := l.PublishBurstBytes
		if burst <= 0 {
			burst = max(l.PublishBytesPerSec, int64(t.maxFrame))
		}
		u.bucket = rate.NewLimiter(rate.Limit(l.PublishBytesPerSec), int(burst))
	}
	t.use[tenant] = u
	return u
}

// acquireConn counts a connection against tenant.
func (t *tenants) acquireConn(tenant string) (*tenantUse, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.getLocked(tenant)
	if m := u.limits.MaxConnections; m > 0 && u.conns >= m {
		t.counters.Connections.Add(1)
		return nil, fmt.Errorf("%w (%d)", ErrTenantConnLimit, m)
	}
	u.conns++
	return u, nil
}

func (t *tenants) releaseConn(u *tenantUse) {
	t.mu.Lock()
	u.conns--
	t.dropIdleLocked(u)
	t.mu.Unlock()
}

// dropIdleLocked forgets u if nothing of its tenant is live and its
// publish bucket is full (a new record would start the same). A record
// already replaced is left alone. Called with t.mu held.
func (t *tenants) dropIdleLocked(u *tenantUse) {
	if u.conns > 0 || u.subs.Load() > 0 || t.use[u.tenant] != u {
		return
	}
	if u.bucket != nil && u.bucket.TokensAt(t.now()) < float64(u.bucket.Burst()) {
		return
	}
	delete(t.use, u.tenant)
}

// acquireSub counts a subscription; release it with releaseSub.
func (t *tenants) acquireSub(u *tenantUse) error {
	n := u.subs.Add(1)
	if m := u.limits.MaxSubscriptions; m > 0 && n > int64(m) {
		u.subs.Add(-1)
		t.counters.Subscriptions.Add(1)
		return ErrTenantSubLimit
	}
	return nil
}

func (t *tenants) releaseSub(u *tenantUse) {
	if u.subs.Add(-1) == 0 {
		t.mu.Lock()
		t.dropIdleLocked(u)
		t.mu.Unlock()
	}
}

// allowPublish takes the payloads' bytes from the tenant's bucket. An
// unlimited tenant costs nothing here (the publish hot path).
func (t *tenants) allowPublish(u *tenantUse, payloads [][]byte) error {
	if u.bucket == nil {
		return nil
	}
	n := payloadBytes(payloads)
	if u.bucket.AllowN(t.now(), n) {
		return nil
	}
	t.counters.Publishes.Add(1)
	t.counters.PublishBytes.Add(uint64(n))
	return ErrTenantRateLimit
}

func payloadBytes(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		n += len(p)
	}
	return n
}
