package demo

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Options configure a demo run. The zero value runs the full demo against
// an embedded broker.
type Options struct {
	// Addr is an external broker (host:port) to run against. Default "":
	// start an embedded broker on 127.0.0.1 with port 0.
	Addr string
	// TLS is the client TLS configuration for Addr (for example from
	// transport.ClientTLSConfig with the broker's CA file). Default nil:
	// the system roots, verifying the name "localhost". Ignored for the
	// embedded broker, whose own certificate is trusted.
	TLS *tls.Config
	// Token is the auth token for Addr. Default "dev" (accepted by a
	// development broker).
	Token string
	// Quick shrinks the message counts (used by tests and CI); the steps
	// and claims are the same. Default false.
	Quick bool
	// Logger receives the embedded broker's logs. Default: discard.
	Logger *slog.Logger
}

// ClaimError reports the claims of a demo that did not hold.
type ClaimError struct {
	Demo   string
	Failed []string
}

func (e *ClaimError) Error() string {
	return fmt.Sprintf("demo %s: %d claim(s) failed: %s", e.Demo, len(e.Failed), strings.Join(e.Failed, "; "))
}

// UnknownError is returned by Run for a name that is not a demo.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown demo %q (want one of %s)", e.Name, strings.Join(Names(), ", "))
}

// A demo prints its steps through e and checks its claims with e.check.
type demoFunc func(ctx context.Context, e *env) error

type entry struct {
	run   demoFunc
	short string
}

var demos = map[string]entry{
	"simple":        {runSimple, "subscribe, publish \"hello\" and \"world\", receive both"},
	"notifications": {runNotifications, "fanout to many subscribers of two tenants; a slow subscriber's drops; last alerts in a cache"},
	"orders":        {runOrders, "a work queue with a crashing worker, redelivery and a dead-lettered poison order"},
	"cache":         {runCache, "put/get, hit/miss, TTL, compare-and-set and a latency table"},
	"latency":       {runLatency, "fanout {1,10} × batch {1,64} × payload {0,256,1024,4096}: p50/p99/p999 and msgs/s"},
}

// Names returns the demo names, sorted.
func Names() []string {
	names := make([]string, 0, len(demos))
	for n := range demos {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Describe returns a one-line description of demo name ("" if unknown).
func Describe(name string) string { return demos[name].short }

// Run runs demo name, printing its steps to w. It returns a *ClaimError
// when a claim the demo makes does not hold, an *UnknownError for an
// unknown name, or the error that stopped it.
func Run(ctx context.Context, name string, w io.Writer, opts Options) error {
	d, ok := demos[name]
	if !ok {
		return &UnknownError{Name: name}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &env{w: w, opts: opts, name: name}
	defer e.close()
	start := time.Now()
	err := d.run(ctx, e)
	if err != nil {
		e.printf("\nDemo stopped: %v\n", err)
		return fmt.Errorf("demo %s: %w", name, err)
	}
	if len(e.failed) > 0 {
		e.printf("\nDemo FAILED: %d of %d claims did not hold (%s).\n", len(e.failed), e.claims, time.Since(start).Round(time.Millisecond))
		return &ClaimError{Demo: name, Failed: e.failed}
	}
	e.printf("\nDemo complete: all %d claims hold (%s).\n", e.claims, time.Since(start).Round(time.Millisecond))
	return nil
}

// env is what a running demo prints through and checks its claims with.
type env struct {
	w      io.Writer
	opts   Options
	name   string
	step   int
	claims int
	failed []string
	b      *brokerConn
}

func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.w, format, args...) }

// stepf starts the next numbered step.
func (e *env) stepf(format string, args ...any) {
	e.step++
	e.printf("\n%d. %s\n", e.step, fmt.Sprintf(format, args...))
}

// notef prints an indented detail line of the current step.
func (e *env) notef(format string, args ...any) {
	e.printf("   %s\n", fmt.Sprintf(format, args...))
}

// check states a claim, marks it [ok] or [FAIL] and records a failure.
func (e *env) check(ok bool, format string, args ...any) bool {
	e.claims++
	claim := fmt.Sprintf(format, args...)
	if ok {
		e.printf("   [ok]   %s\n", claim)
	} else {
		e.printf("   [FAIL] %s\n", claim)
		e.failed = append(e.failed, claim)
	}
	return ok
}

func (e *env) close() {
	if e.b != nil {
		if err := e.b.close(); err != nil {
			e.opts.Logger.Warn("demo: stop broker", "err", err)
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor polls cond every interval until it holds or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() bool) error {
	for !cond() {
		if err := sleep(ctx, interval); err != nil {
			return err
		}
	}
	return nil
}
