package server

import (
	"context"
	"errors"
	"time"

	"github.com/quic-go/quic-go"
)

// errTokenExpired is the cause of a stream context that ended because the
// identity's token expired.
var errTokenExpired = errors.New("token expired")

// untilExpiry returns a context for a stream authenticated as id: it ends
// with the connection, or at id.Expires with cause errTokenExpired. At
// expiry reset is called with streamCodeTokenExpired (a blocked read or
// write does not watch a context), and the expiry is counted and logged.
// reset ends the stream, or starts its end: a publish-only stream's reset
// stops reading; a control stream's (control.expire) stops reading and
// leaves the write side to the handler, which writes the replies it owes
// and then resets it with the same code, bounded by a grace timer.
// stop releases the timer; call it when the stream is done. A stream whose
// handler returns at or after the expiry, before the timer fired (it read
// a frame after the expiry and served nothing more), gets reset from stop
// as from the timer: either way exactly once, and before stop returns (so
// before the handler's own end of the stream, whose reset code then is
// not the first).
func (c *conn) untilExpiry(id *Identity, reset func(quic.StreamErrorCode)) (ctx context.Context, stop func()) {
	parent := c.qc.Context()
	if id.Expires.IsZero() {
		return parent, func() {}
	}
	ctx, cancel := context.WithDeadlineCause(parent, id.Expires, errTokenExpired)
	expire := func() {
		c.s.stats.TokenExpiries.Add(1)
		c.log.Info("token expired: stream reset", "tenant", id.Tenant, "subject", id.Subject)
		reset(streamCodeTokenExpired)
	}
	timerDone := make(chan struct{})
	unwatch := context.AfterFunc(ctx, func() {
		defer close(timerDone)
		if tokenExpired(ctx) {
			expire()
		}
	})
	return ctx, func() {
		if !unwatch() {
			<-timerDone // it started: its reset comes before the handler's own
		} else if parent.Err() == nil && id.expired() {
			expire()
		}
		cancel()
	}
}

// tokenExpired reports whether ctx (from untilExpiry) ended because the
// token expired.
func tokenExpired(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errTokenExpired)
}

// expired reports whether id's rights have ended: by the clock, not waiting
// for the expiry timer, so a frame read at or after the expiry is not
// served even if the timer has not fired yet. One clock read, and none for
// an identity that never expires.
func (id *Identity) expired() bool {
	return !id.Expires.IsZero() && !time.Now().Before(id.Expires)
}
