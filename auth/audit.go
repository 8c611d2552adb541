package auth

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Denial describes one refused request. It has no field for a token or any
// other secret, so nothing secret can be logged through it.
type Denial struct {
	Subject  string // the token's sub, or "" when authentication failed
	Tenant   string
	Action   string // e.g. ActionStreamPublish, or "auth" for a refused token
	Resource string // e.g. StreamResource(...)
	Reason   string // e.g. "forbidden" or a TokenError text
}

// DefaultDenialLogBurst and DefaultDenialLogRate bound the "access denied"
// lines of an Auditor: the first DefaultDenialLogBurst at once, then
// DefaultDenialLogRate a second (as the broker's "auth failed" lines).
const (
	DefaultDenialLogBurst = 10
	DefaultDenialLogRate  = 1
)

// Auditor logs and counts denials. The zero value logs to slog.Default()
// with time.Now; it is safe for concurrent use.
//
// Every denial is counted, but the lines are limited (LogBurst, LogRate):
// a client holding any valid token can ask for what it may not do as fast
// as it can send, and must not be able to flood the log. Each line carries
// denials_total, the count so far, and not_logged, the denials not logged
// since the previous line.
type Auditor struct {
	// Log receives one Warn record "access denied" per logged denial.
	// Default slog.Default().
	Log *slog.Logger
	// Now stamps denials and paces the lines. Default time.Now.
	Now func() time.Time
	// LogBurst is how many lines may be logged at once. Zero or negative
	// means DefaultDenialLogBurst (10).
	LogBurst int
	// LogRate is how many lines a second may be logged after the burst.
	// Zero or negative means DefaultDenialLogRate (1).
	LogRate float64

	denials atomic.Uint64
	once    sync.Once
	lines   *LogLimiter
}

// Deny records d: counts it and, unless too many lines were logged just
// now, logs subject, tenant, action, resource, reason and time.
func (a *Auditor) Deny(d Denial) {
	n := a.denials.Add(1)
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	at := now()
	a.once.Do(func() { a.lines = NewLogLimiter(a.LogBurst, a.LogRate) })
	ok, notLogged := a.lines.Allow(at)
	if !ok {
		return
	}
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "access denied",
		slog.String("subject", d.Subject),
		slog.String("tenant", d.Tenant),
		slog.String("action", d.Action),
		slog.String("resource", d.Resource),
		slog.String("reason", d.Reason),
		slog.Time("at", at.UTC()),
		slog.Uint64("denials_total", n),
		slog.Uint64("not_logged", notLogged),
	)
}

// Denials is the number of denials recorded so far.
func (a *Auditor) Denials() uint64 { return a.denials.Load() }
