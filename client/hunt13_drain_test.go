package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// While a broker drains (it resets every new stream, its connections
// still open), a client's publishes and cache requests that need a new
// stream back off between attempts as they do between dials, instead of
// opening and authenticating streams in a tight loop for as long as the
// drain lasts.
func TestHunt13NoStreamStormWhileBrokerDrains(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	// A service request in flight holds the drain (its answer is awaited).
	server := dial(t, b, Options{})
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock()
	held := make(chan struct{})
	svc, err := server.Serve(ctx, "default", "slow", func(context.Context, []byte) ([]byte, error) {
		close(held)
		<-release
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	defer unblock() // before svc.Close, which waits for the handler
	go func() { _, _ = server.Request(ctx, "default", "slow", nil) }()
	<-held

	var tokens atomic.Int64
	c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1,
		TokenSource: func(context.Context) (string, error) { tokens.Add(1); return "dev", nil }})
	if _, err := c.QueueStats(ctx, "default", "demo", "g"); err == nil {
		t.Fatal("queue stats of no group")
	}
	drained := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		drained <- b.Server.Shutdown(sctx)
	}()
	// The client's publish and cache streams end (as after a write
	// failure or a token expiry) while the broker drains: every call from
	// here needs a new stream, which the draining broker resets, on a
	// connection it keeps open until the drain ends.
	pollUntil(t, "the broker to drain", func() bool {
		_, err := server.Request(ctx, "default", "none", nil)
		return isDraining(err)
	})
	c.lanes[0].live().fail(&ConnectionError{Op: "test", Err: errors.New("stream ended")})
	c.cacheLanes[0].live().fail(&ConnectionError{Op: "test", Err: errors.New("stream ended")})
	before := tokens.Load()
	const window = 500 * time.Millisecond
	end := time.Now().Add(window)
	calls := 0
	for time.Now().Before(end) {
		cctx, cancel := context.WithTimeout(ctx, time.Until(end))
		_ = c.Publish(cctx, "default", "demo", []byte("x"))
		_, _, _ = c.Cache("default", "c").Get(cctx, "k")
		cancel()
		calls++
	}
	opened := tokens.Load() - before
	unblock()
	<-drained
	b.Stop()
	// With the default backoff (50 ms doubling to 2 s) a loop of calls
	// over half a second is worth a few dozen attempts at most.
	if opened > 200 {
		t.Fatalf("%d streams authenticated in %v of drain (%d calls): no backoff between attempts", opened, window, calls)
	}
	t.Logf("%d streams authenticated in %v of drain (%d calls)", opened, window, calls)
}

// isDraining reports a request refused because the broker is shutting
// down.
func isDraining(err error) bool {
	return err != nil && strings.Contains(err.Error(), "shutting down")
}
