package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// startServiceTokenBroker starts a token-verifying broker (no leeway) and
// returns it with a function issuing tokens of tenant a, allowed to serve
// and request a/ns/*, that expire after life.
func startServiceTokenBroker(t *testing.T) (*testbroker.Broker, func(life time.Duration) string) {
	t.Helper()
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b := testbroker.Start(t, testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}}}))
	return b, func(life time.Duration) string {
		tok, err := sg.Issue(auth.Claims{Tenant: "a", Subject: "svc", ExpiresAt: time.Now().Add(life),
			Perms: []string{"stream.subscribe:stream:a/ns/*", "stream.publish:stream:a/ns/*"}})
		if err != nil {
			t.Error(err)
		}
		return tok
	}
}

// returnsWithin fails the test if f has not returned within d (a generous
// bound: it catches hangs, not slowness).
func returnsWithin(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// A Service whose broker went away keeps trying to serve again; Close
// then ends it at once, with no error and no goroutine left.
func TestServeCloseWhileServingAgain(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	c := dial(t, b, Options{Reconnect: ReconnectPolicy{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
	s, err := c.Serve(ctx, "default", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	b.Stop()
	select {
	case <-s.Done():
		t.Fatalf("the service ended on a loss: %v", s.Err())
	case <-time.After(50 * time.Millisecond): // let it try again a few times
	}
	returnsWithin(t, 10*time.Second, "Service.Close", func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if s.Err() != nil {
		t.Fatalf("Err after Close: %v", s.Err())
	}
}

// Closing the requester's client while many requests wait for their
// answers (and the responder's client while its handlers run) ends every
// call: Request returns ErrClosed, none hangs.
func TestClientCloseWithRequestsAndAnswersQueued(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{})
	started := make(chan struct{}, 64)
	release := make(chan struct{})
	_, err := resp.Serve(ctx, "default", "hold", func(hctx context.Context, p []byte) ([]byte, error) {
		started <- struct{}{}
		<-release
		return p, nil
	}, WithMaxInFlight(32))
	if err != nil {
		t.Fatal(err)
	}
	req := dial(t, b, Options{})
	const n = 48 // 32 held by the handler, the rest no_responders (or ErrClosed)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := req.Request(ctx, "default", "hold", fmt.Appendf(nil, "r%d-%0512d", i, 0))
			errs <- err
		})
	}
	for range 32 {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatal("the handlers did not start")
		}
	}
	returnsWithin(t, 10*time.Second, "the requester's Close", func() { _ = req.Close() })
	returnsWithin(t, 10*time.Second, "the requests", wg.Wait)
	close(errs)
	closed := 0
	for err := range errs {
		switch {
		case errors.Is(err, ErrClosed):
			closed++
		case errors.Is(err, ErrNoResponders):
		default:
			t.Errorf("request: %v", err)
		}
	}
	if closed < 32 {
		t.Errorf("%d requests got ErrClosed, want the 32 held at least", closed)
	}
	close(release)
	returnsWithin(t, 10*time.Second, "the responder's Close", func() { _ = resp.Close() })
}

// A handler still running when its stream is lost answers after the
// service serves again on a new stream (the restarted broker numbers its
// requests from 1 again): that stale answer must go nowhere, and the new
// request gets its own.
func TestServeStaleAnswerAfterServingAgain(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{Reconnect: ReconnectPolicy{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}})
	oldStarted, oldRelease, oldDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	s, err := resp.Serve(ctx, "default", "svc", func(_ context.Context, p []byte) ([]byte, error) {
		if string(p) == "old" {
			close(oldStarted)
			<-oldRelease
			defer close(oldDone)
			return []byte("stale answer"), nil
		}
		<-oldDone
		time.Sleep(20 * time.Millisecond) // give a stale answer the time to go first
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	oldReq := dial(t, b, Options{Reconnect: ReconnectPolicy{Disabled: true}})
	oldErr := make(chan error, 1)
	go func() {
		_, err := oldReq.Request(ctx, "default", "svc", []byte("old"))
		oldErr <- err
	}()
	<-oldStarted
	b.Restart()
	if err := <-oldErr; err == nil {
		t.Fatal("a request across the restart was answered")
	}
	req := dial(t, b, Options{})
	go func() {
		// Once the service serves again on the new broker.
		for s.reserved.Load() == 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		close(oldRelease)
	}()
	for {
		got, err := req.Request(ctx, "default", "svc", []byte("new"))
		if err == nil {
			if string(got) != "new" {
				t.Fatalf("the new request got %q", got)
			}
			break
		}
		if !errors.Is(err, ErrNoResponders) || ctx.Err() != nil {
			t.Fatalf("new request: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A requester whose TokenSource tokens expire: the broker ends its
// request stream at the expiry, and the next Request works, on a new
// stream with a fresh token.
func TestRequestAfterRequesterTokenExpiry(t *testing.T) {
	b, issue := startServiceTokenBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{TenantID: "a", TokenSource: func(context.Context) (string, error) { return issue(time.Minute), nil }})
	if _, err := resp.Serve(ctx, "ns", "echo", echoHandler); err != nil {
		t.Fatal(err)
	}
	req := dial(t, b, Options{TenantID: "a", TokenSource: func(context.Context) (string, error) { return issue(1500 * time.Millisecond), nil }})
	if got, err := req.Request(ctx, "ns", "echo", []byte("a")); err != nil || string(got) != "a" {
		t.Fatalf("before the expiry: %q %v", got, err)
	}
	// Wait until the broker has ended the stream (the client saw it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		req.rq.mu.Lock()
		rc := req.rq.cur
		req.rq.mu.Unlock()
		select {
		case <-rc.done:
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the request stream outlived its token")
			}
			continue
		}
		break
	}
	if got, err := req.Request(ctx, "ns", "echo", []byte("b")); err != nil || string(got) != "b" {
		t.Fatalf("after the expiry: %q %v", got, err)
	}
}

// Requests to a broker that stopped reading fill the request stream's
// queue up to its bound; then callers wait for room. Every one whose
// deadline passes, queued or waiting, fails as a request timeout (and as
// its context's error), and the queue stays within its bound.
func TestRequestDeadlineWhileQueueFull(t *testing.T) {
	c, ctx := dialStalledBroker(t)
	if _, err := c.reqConn(ctx); err != nil { // authenticate before the short deadlines
		t.Fatal(err)
	}
	payload := make([]byte, 64<<10)
	frame := len(payload)*4/3 + 1024 // base64, plus the names
	maxQueued := 0
	for range 2 * maxQueuedBytes / len(payload) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		_, err := c.Request(rctx, "default", "svc", payload)
		cancel()
		if !errors.Is(err, ErrRequestTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("request to a stalled broker: %v, want a request timeout", err)
		}
		rc := c.rq.cur
		rc.q.mu.Lock()
		maxQueued = max(maxQueued, len(rc.q.buf))
		rc.q.mu.Unlock()
	}
	if maxQueued > maxQueuedBytes+frame {
		t.Fatalf("queued %d bytes, bound is %d + one request", maxQueued, maxQueuedBytes)
	}
	if maxQueued < maxQueuedBytes-frame {
		t.Fatalf("queued at most %d bytes: the broker did not stall the flusher (test setup)", maxQueued)
	}
}

// A client closed while Serve starts, after the stream is open and its
// writer runs but before the service runs: Serve fails with ErrClosed,
// and the client's Close does not wait for ever on that writer.
func TestServeClientClosedWhileStarting(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	// Not dial: with the bug, Close never returns, and a cleanup calling
	// it again would hang the test binary instead of failing the test.
	c, err := Dial(ctx, b.Addr, Options{TLS: b.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	beforeServeRun = func() {
		go func() {
			defer close(closed)
			_ = c.Close()
		}()
		for { // until the client takes no new goroutine
			c.mu.Lock()
			done := c.closed
			c.mu.Unlock()
			if done {
				return
			}
			runtime.Gosched()
		}
	}
	defer func() { beforeServeRun = func() {} }()
	if _, err := c.Serve(ctx, "default", "echo", echoHandler); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's Close did not return")
	}
}
