package server

import (
	"context"
	"errors"

	"github.com/quic-go/quic-go"
)

// errTokenExpired is the cause of a stream context that ended because the
// identity's token expired.
var errTokenExpired = errors.New("token expired")

// untilExpiry returns a context for a stream authenticated as id: it ends
// with the connection, or at id.Expires with cause errTokenExpired. At
// expiry reset is called with streamCodeTokenExpired to end the stream (a
// blocked read or write does not watch a context), and the expiry is
// counted and logged. stop releases the timer; call it when the stream is
// done.
func (c *conn) untilExpiry(id *Identity, reset func(quic.StreamErrorCode)) (ctx context.Context, stop func()) {
	parent := c.qc.Context()
	if id.Expires.IsZero() {
		return parent, func() {}
	}
	ctx, cancel := context.WithDeadlineCause(parent, id.Expires, errTokenExpired)
	unwatch := context.AfterFunc(ctx, func() {
		if !tokenExpired(ctx) {
			return
		}
		c.s.stats.TokenExpiries.Add(1)
		c.log.Info("token expired: stream reset", "tenant", id.Tenant, "subject", id.Subject)
		reset(streamCodeTokenExpired)
	})
	return ctx, func() {
		unwatch()
		cancel()
	}
}

// tokenExpired reports whether ctx (from untilExpiry) ended because the
// token expired.
func tokenExpired(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errTokenExpired)
}
