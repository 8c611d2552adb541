package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/felixmq/felix/auth"
)

// Token rotation. A broker that verifies tokens resets every stream a token
// authenticated when the token expires, failing the requests in flight on
// it. So a publish, cache or requester stream opened with a token from
// Options.TokenSource is moved to a fresh token before its token's exp:
//
//   - when the stream authenticates, the token's iat and exp claims are
//     read (not verified: the broker does that); an opaque token or one
//     without exp is never rotated, nor is a static Options.Token (it
//     cannot change);
//   - at exp minus a margin (rotateDelay; halfway to exp when the token is
//     already within its margin as the stream opens, sessionRotateDelay)
//     the lane asks TokenSource for a token, opens and authenticates a new
//     stream on the same connection with it and routes new requests there;
//   - the old stream takes no new request: those queued on it are written,
//     its send side is finished (FIN) and the broker, which answers every
//     request it read before ending its side, ends it cleanly. Requests in
//     flight on it get their replies there. The wait is bounded by
//     RequestTimeout (and by the broker's reset at expiry).
//
// A publish lane keeps order across the switch: the new stream carries
// nothing until the old one has ended, so the publishes it carries are
// stored after every one sent on the old stream (see pubSession.ready).
// Cache requests are independent; they go to the new stream at once.
//
// If TokenSource returns a token that expires no later than the current
// one (it caches tokens and has not refreshed yet), or the new stream
// cannot be opened, the lane tries again halfway to exp, and so on while
// that is at least minRotateDelay away. After that the old stream is kept:
// the broker resets it at expiry, and the lane reconnects then, as without
// rotation.
//
// Subscriptions, queue consumers and services are not rotated (docs/security.md
// says what they see at expiry): their streams carry what the broker
// pushes, which cannot move to a new stream without gaps or duplicates in
// general.

// Rotation margins: a stream moves to a fresh token a quarter of its
// token's lifetime (iat to exp) before exp, at most maxRotateMargin before.
const (
	maxRotateMargin = 30 * time.Second
	rotateFraction  = 4
	// minRotateDelay: a rotation retry sooner than this is not scheduled
	// (exp is too close; the broker's reset will do).
	minRotateDelay = 10 * time.Millisecond
)

// tokenLife is the validity of a token as its claims state it.
type tokenLife struct {
	iat time.Time // issued at; zero when absent
	exp time.Time // expires at; zero when absent (never rotated)
}

// rotateDelay returns how long after now a stream authenticated with a
// token of life l should move to a fresh token: at exp minus
// min(maxRotateMargin, a quarter of the lifetime), the lifetime being
// iat to exp (or now to exp without iat), so that where the margin falls
// does not depend on when a cached token was used. A time already past
// gives 0 (rotate now). ok is false when there is nothing to schedule:
// no exp, or exp passed.
func rotateDelay(now time.Time, l tokenLife) (d time.Duration, ok bool) {
	left := l.exp.Sub(now)
	if l.exp.IsZero() || left <= 0 {
		return 0, false
	}
	life := left
	if !l.iat.IsZero() && l.iat.Before(l.exp) {
		life = l.exp.Sub(l.iat)
	}
	return max(left-min(maxRotateMargin, life/rotateFraction), 0), true
}

// sessionRotateDelay returns how long after now a session just
// authenticated with a token of life l should rotate: at rotateDelay's
// instant, or, when that has already passed, at retryDelay's (halfway to
// exp). TokenSource was asked for the token a moment ago, so asking it
// again at once gains nothing; and with a source whose every token is due
// as it is issued (a clock ahead of the issuer's by most of a token's
// life, a long-past iat), each new session would be replaced as soon as it
// opened, so fast that publishes ran out of sessions to go to
// (errSessionGone) and a rotation opened sessions before the one they
// replace had ended.
func sessionRotateDelay(now time.Time, l tokenLife) (time.Duration, bool) {
	d, ok := rotateDelay(now, l)
	if ok && d == 0 {
		return retryDelay(now, l.exp)
	}
	return d, ok
}

// retryDelay returns when to ask TokenSource again after it returned no
// fresher token: halfway to exp. ok is false when that is less than
// minRotateDelay away (the broker's reset at exp will do).
func retryDelay(now, exp time.Time) (d time.Duration, ok bool) {
	d = exp.Sub(now) / 2
	return d, d >= minRotateDelay
}

// tokenTimes returns the iat and exp claims of a JWT, read without
// verifying it. ok is false for an opaque token or one without exp.
func tokenTimes(token string) (l tokenLife, ok bool) {
	c, ok := auth.PeekClaims(token)
	if !ok || c.ExpiresAt.IsZero() {
		return tokenLife{}, false
	}
	return tokenLife{iat: c.IssuedAt, exp: c.ExpiresAt}, true
}

// tokenExpired reports whether token is a JWT whose exp claim has passed.
// It only tells the caller why the broker refused the token.
func tokenExpired(token string, now time.Time) bool {
	l, ok := tokenTimes(token)
	return ok && now.After(l.exp)
}

// token returns the token to authenticate a new stream with: TokenSource's
// when set, else Options.Token.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.opts.TokenSource == nil {
		return c.opts.Token, nil
	}
	tok, err := c.opts.TokenSource(ctx)
	if err != nil {
		return "", &TokenSourceError{Err: err}
	}
	return tok, nil
}

// TokenSourceError is an error returned by Options.TokenSource.
type TokenSourceError struct {
	Err error
}

func (e *TokenSourceError) Error() string { return "felix: token source: " + e.Err.Error() }

func (e *TokenSourceError) Unwrap() error { return e.Err }

// rotationLife is the life of token as rotation sees it: its claims, or
// nothing (never rotated) when there is no TokenSource to get another
// token from.
func (c *Client) rotationLife(token string) tokenLife {
	if c.opts.TokenSource == nil {
		return tokenLife{}
	}
	l, _ := tokenTimes(token)
	return l
}

// errStaleToken: TokenSource returned a token expiring no later than the
// stream's current one, so moving to it would gain nothing.
var errStaleToken = errors.New("token source returned no fresher token")

// freshToken asks TokenSource for a token that expires after exp (an
// opaque one counts as fresh: its expiry is unknown).
func (c *Client) freshToken(ctx context.Context, exp time.Time) (string, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return "", err
	}
	if next, ok := tokenTimes(tok); ok && !next.exp.After(exp) {
		return "", errStaleToken
	}
	return tok, nil
}

// rotation is a session's rotation timer.
type rotation struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// schedule arms the timer to run rotate, on a goroutine the client
// tracks, after d. It does nothing when ok is false (see rotateDelay) or
// the timer was stopped.
func (r *rotation) schedule(c *Client, d time.Duration, ok bool, rotate func()) {
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.t = time.AfterFunc(d, func() { c.goTracked(rotate) })
	}
}

// retry arms the timer again, halfway to exp (see retryDelay).
func (r *rotation) retry(c *Client, exp time.Time, rotate func()) {
	d, ok := retryDelay(time.Now(), exp)
	r.schedule(c, d, ok, rotate)
}

// stop disarms the timer for good (the session ended or is retiring).
func (r *rotation) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.t != nil {
		r.t.Stop()
	}
}

// replaceSession is the part of a lane's rotation done under its gate (so
// it does not race with a reopening after a failure): it gets a fresh
// token (expiring after exp, old's) and opens the session that takes over
// from old, which open makes the lane's. It returns a nil session and no error when old is no longer
// the lane's session (it failed, or the lane moved on).
func replaceSession[S comparable](ctx context.Context, c *Client, g gate, live func() S, old S, exp time.Time,
	open func(context.Context, string) (S, error)) (S, error) {
	var none S
	if !g.enter(ctx) {
		return none, c.ctxErr(ctx)
	}
	defer g.leave()
	if live() != old {
		return none, nil
	}
	token, err := c.freshToken(ctx, exp)
	if err != nil {
		return none, err
	}
	return open(ctx, token)
}

// endStream finishes a session's send side once q is flushed (new frames
// must already be kept out of q) and waits until the session ends (done),
// which the broker brings about by ending its side after answering every
// request it read. It returns nil when that happened, else why not (ctx's
// error, errSessionGone, or the stream's).
func endStream(ctx context.Context, q *writeQueue, alive func() bool, closeSend func() error, done <-chan struct{}) error {
	if err := q.closeWhenFlushed(ctx, alive, closeSend); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retireErr is the error a retiring session fails with when it could not
// be ended cleanly.
func retireErr(op string, err error) error {
	return &ConnectionError{Op: op, Err: fmt.Errorf("ending the stream replaced by token rotation: %w", err)}
}

// rotateCtx bounds one rotation: the client's life and RequestTimeout.
func (c *Client) rotateCtx() (context.Context, context.CancelFunc) {
	return c.bind(context.Background(), true)
}

// logRotation reports how a rotation went.
func (c *Client) logRotation(kind string, exp time.Time, err error) {
	switch {
	case err == nil:
		c.log.Debug("felix stream moved to a fresh token", "stream", kind, "old_exp", exp)
	case c.isClosed():
	case errors.Is(err, errStaleToken):
		c.log.Debug("felix token rotation: no fresher token yet", "stream", kind, "exp", exp)
	default:
		c.log.Warn("felix token rotation failed; the stream will be reset when its token expires",
			"stream", kind, "exp", exp, "err", err)
	}
}
