package client

import (
	"context"
	"errors"
	"fmt"
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
