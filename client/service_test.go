package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRequestServe(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	req := dial(t, b, Options{})
	if _, err := req.Request(ctx, "default", "echo", []byte("x")); !errors.Is(err, ErrNoResponders) {
		t.Fatalf("nobody serving: %v", err)
	}
	var hits [2]atomic.Int64
	var running, peak atomic.Int64
	var svcs []*Service
	for i := range 2 {
		c := dial(t, b, Options{})
		s, err := c.Serve(ctx, "default", "echo", func(_ context.Context, p []byte) ([]byte, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				if old := peak.Load(); n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			hits[i].Add(1)
			if string(p) == "fail" {
				return nil, errors.New("refused")
			}
			time.Sleep(time.Millisecond) // overlap the requests
			return append([]byte(fmt.Sprint(i, ":")), p...), nil
		}, WithMaxInFlight(4))
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, s)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			p := fmt.Sprint("r", i)
			got, err := req.Request(ctx, "default", "echo", []byte(p))
			if errors.Is(err, ErrNoResponders) {
				return // all 8 places in use: allowed
			}
			if err != nil || string(got[2:]) != p {
				t.Errorf("request %s: %q %v", p, got, err)
			}
		})
	}
	wg.Wait()
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("load not shared: %d %d", hits[0].Load(), hits[1].Load())
	}
	if peak.Load() > 8 {
		t.Fatalf("%d handlers at once, bound 2x4", peak.Load())
	}
	_, err := req.Request(ctx, "default", "echo", []byte("fail"))
	var re *ResponderError
	if !errors.As(err, &re) || re.Message != "refused" {
		t.Fatalf("responder error: %v", err)
	}
	for _, s := range svcs {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		<-s.Done()
	}
}

func TestRequestTimeoutFromContext(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b, Options{})
	release := make(chan struct{})
	s, err := c.Serve(testCtx(t), "default", "slow", func(ctx context.Context, _ []byte) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Request(ctx, "default", "slow", nil); !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	close(release)
	s.Close()
	// After Close nobody serves (a request racing the broker's notice
	// of the end gets responder_gone).
	for {
		_, err := c.Request(testCtx(t), "default", "slow", nil)
		if errors.Is(err, ErrNoResponders) {
			break
		}
		var se *ServerError
		if !errors.As(err, &se) || se.Code != "responder_gone" {
			t.Fatalf("after Close: %v", err)
		}
	}
}

// echoHandler answers every request with its payload.
func echoHandler(_ context.Context, p []byte) ([]byte, error) { return p, nil }

func TestServeAgainAfterRestart(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{})
	s, err := resp.Serve(ctx, "default", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	req := dial(t, b, Options{})
	if got, err := req.Request(ctx, "default", "echo", []byte("before")); err != nil || string(got) != "before" {
		t.Fatalf("before the restart: %q %v", got, err)
	}
	b.Restart()
	// The service serves again by itself; until it has, requests find
	// nobody (or lose their connection).
	for {
		got, err := req.Request(ctx, "default", "echo", []byte("after"))
		if err == nil {
			if string(got) != "after" {
				t.Fatalf("after the restart: %q", got)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no answer after the restart: %v (service err %v)", err, s.Err())
		}
		select {
		case <-s.Done():
			t.Fatalf("the service ended: %v", s.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := s.reserved.Load(); n < 1 {
		t.Fatalf("served again %d times", n)
	}
	if err := s.Close(); err != nil || s.Err() != nil {
		t.Fatalf("Close: %v, Err %v", err, s.Err())
	}
}

func TestServeEndsOnLossWithoutReconnect(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{Reconnect: ReconnectPolicy{Disabled: true}})
	s, err := resp.Serve(ctx, "default", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	b.Restart()
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("the service did not end")
	}
	if !errors.Is(s.Err(), ErrDisconnected) {
		t.Fatalf("Err = %v, want ErrDisconnected", s.Err())
	}
	if n := s.reserved.Load(); n != 0 {
		t.Fatalf("served again %d times with reconnection off", n)
	}
}

// A service whose token expires: the broker ends its stream at the
// expiry, and the service serves again with a fresh token from the
// TokenSource; a static token's service ends with ErrTokenExpired, since
// serving again with the same token would be refused.
func TestServeAcrossTokenExpiry(t *testing.T) {
	b, issue := startServiceTokenBroker(t)
	ctx := testCtx(t)
	rotating := dial(t, b, Options{TenantID: "a", TokenSource: func(context.Context) (string, error) { return issue(1500 * time.Millisecond), nil }})
	s, err := rotating.Serve(ctx, "ns", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	static := dial(t, b, Options{TenantID: "a", Token: issue(1500 * time.Millisecond)})
	st, err := static.Serve(ctx, "ns", "other", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	req := dial(t, b, Options{TenantID: "a", TokenSource: func(context.Context) (string, error) { return issue(time.Minute), nil }})
	for s.reserved.Load() < 1 {
		select {
		case <-s.Done():
			t.Fatalf("the rotating service ended: %v", s.Err())
		case <-ctx.Done():
			t.Fatal("the rotating service was not served again")
		case <-time.After(20 * time.Millisecond):
		}
	}
	for {
		got, err := req.Request(ctx, "ns", "echo", []byte("x"))
		if err == nil && string(got) == "x" {
			break
		}
		if ctx.Err() != nil || (err != nil && !errors.Is(err, ErrNoResponders) && !isCode(err, "responder_gone")) {
			t.Fatalf("after the expiry: %q %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-st.Done():
	case <-ctx.Done():
		t.Fatal("the static token's service did not end")
	}
	if !errors.Is(st.Err(), ErrTokenExpired) {
		t.Fatalf("static token's service: Err = %v, want ErrTokenExpired", st.Err())
	}
}

// isCode reports whether err is a *ServerError with code.
func isCode(err error, code string) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}

// An answer larger than the frame limit reaches its requester as a
// responder error, and the service goes on.
func TestServeAnswerTooLarge(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{MaxFrameBytes: 4096})
	s, err := resp.Serve(ctx, "default", "big", func(_ context.Context, p []byte) ([]byte, error) {
		if string(p) == "big" {
			return make([]byte, 8192), nil
		}
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	req := dial(t, b, Options{})
	_, err = req.Request(ctx, "default", "big", []byte("big"))
	var re *ResponderError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "answer not sent") {
		t.Fatalf("oversized answer: %v", err)
	}
	if got, err := req.Request(ctx, "default", "big", []byte("small")); err != nil || string(got) != "small" {
		t.Fatalf("after it: %q %v (service err %v)", got, err, s.Err())
	}
}

// A requester whose tokens come from a TokenSource moves its request
// stream to a fresh token before the old one expires, as publish and
// cache streams do: requests made all along, across two expiries, never
// fail, and the stream was replaced.
func TestRequestStreamRotatesBeforeExpiry(t *testing.T) {
	b, issue := startServiceTokenBroker(t)
	ctx := testCtx(t)
	resp := dial(t, b, Options{TenantID: "a", TokenSource: func(context.Context) (string, error) { return issue(time.Minute), nil }})
	if _, err := resp.Serve(ctx, "ns", "echo", echoHandler); err != nil {
		t.Fatal(err)
	}
	// exp has whole seconds: 2s tokens live 1-2s, and rotate a quarter
	// of their life (0.5s) before it ends.
	req := dial(t, b, Options{TenantID: "a", TokenSource: func(context.Context) (string, error) { return issue(2 * time.Second), nil }})
	var mu sync.Mutex
	streams := map[*reqConn]bool{}
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					t.Error("no two rotations in time")
					return
				case <-time.After(2 * time.Millisecond):
				}
				p := fmt.Sprint(w, "-", i)
				got, err := req.Request(ctx, "ns", "echo", []byte(p))
				if err != nil || string(got) != p {
					t.Errorf("request %s: %q %v", p, got, err)
					once.Do(func() { close(stop) })
					return
				}
				req.rq.mu.Lock()
				cur := req.rq.cur
				req.rq.mu.Unlock()
				mu.Lock()
				streams[cur] = true
				if len(streams) >= 3 { // two rotations: past the first token's expiry
					once.Do(func() { close(stop) })
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// A request whose write found its stream retired by a token rotation
// goes again on the new stream. If the retired stream fails just then,
// its failure ends the request it still held: the retry must not take
// that stale answer for the answer to the request it sent again.
func TestRequestRetryIgnoresRetiredStreamsFailure(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	srv := dial(t, b, Options{})
	if _, err := srv.Serve(ctx, "default", "echo", func(_ context.Context, p []byte) ([]byte, error) {
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	req := dial(t, b, Options{})
	if got, err := req.Request(ctx, "default", "echo", []byte("first")); err != nil || string(got) != "first" {
		t.Fatalf("first request: %q %v", got, err)
	}
	req.rq.mu.Lock()
	old := req.rq.cur
	req.rq.mu.Unlock()
	stale := errors.New("the retired stream failed")
	var failed atomic.Int64
	orig := requestHook
	t.Cleanup(func() { requestHook = orig })
	requestHook = func(rc *reqConn, err error) {
		switch {
		case rc != old:
		case err == nil:
			rc.retiring.Store(true) // a rotation opened the next stream just now
		case errors.Is(err, errRetired):
			failed.Add(1)
			rc.fail(stale) // and the retired stream fails before the retry
		}
	}
	got, err := req.Request(ctx, "default", "echo", []byte("second"))
	if failed.Load() != 1 {
		t.Fatalf("the write on the retired stream failed %d times, want once", failed.Load())
	}
	if err != nil || string(got) != "second" {
		t.Fatalf("request retried after its stream retired: %q %v, want the reply \"second\"", got, err)
	}
}
