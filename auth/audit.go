package auth

import (
	"context"
	"log/slog"
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

// Auditor logs and counts denials. The zero value logs to slog.Default()
// with time.Now; it is safe for concurrent use.
type Auditor struct {
	// Log receives one Warn record "access denied" per denial. Default
	// slog.Default().
	Log *slog.Logger
	// Now stamps denials. Default time.Now.
	Now func() time.Time

	denials atomic.Uint64
}

// Deny records d: counts it and logs subject, tenant, action, resource,
// reason and time.
func (a *Auditor) Deny(d Denial) {
	a.denials.Add(1)
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "access denied",
		slog.String("subject", d.Subject),
		slog.String("tenant", d.Tenant),
		slog.String("action", d.Action),
		slog.String("resource", d.Resource),
		slog.String("reason", d.Reason),
		slog.Time("at", now().UTC()),
	)
}

// Denials is the number of denials recorded so far.
func (a *Auditor) Denials() uint64 { return a.denials.Load() }
