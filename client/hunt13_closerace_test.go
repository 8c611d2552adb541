package client

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Client.Close racing every kind of call, each in a loop on one client:
// every call that does not succeed ends with ErrClosed (never a
// *ConnectionError, a context error or a hang), and nothing of the
// client is left running (goleak, at the end of the package's tests).
func TestHunt13CloseRacesEveryCall(t *testing.T) {
	b := startKeptQueueBroker(t)
	keptCache(t, b, t.TempDir())
	ctx := testCtx(t)
	server := dial(t, b, Options{})
	svc, err := server.Serve(ctx, "default", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := server.Publish(ctx, "default", "jobs", []byte("x")); err != nil {
		t.Fatal(err)
	}
	co, err := server.Consumer(ctx, "default", "jobs", "g") // the group queuestats reads
	if err != nil {
		t.Fatal(err)
	}
	co.Close()
	for round := range 6 {
		c := dial(t, b, Options{})
		kv := c.Cache("default", "kept")
		pub := c.Publisher("default", "jobs", PublisherOptions{})
		calls := map[string]func() error{
			"publish":    func() error { return c.Publish(ctx, "default", "jobs", []byte("p")) },
			"cache put":  func() error { _, err := kv.Put(ctx, "k", []byte("v")); return err },
			"request":    func() error { _, err := c.Request(ctx, "default", "echo", []byte("r")); return err },
			"queuestats": func() error { _, err := c.QueueStats(ctx, "default", "jobs", "g"); return err },
			"publisher": func() error {
				if err := pub.Publish(ctx, []byte("b")); err != nil {
					return err
				}
				return pub.Flush(ctx)
			},
			"subscribe": func() error {
				s, err := c.Subscribe(ctx, "default", "jobs", FromEarliest())
				if err != nil {
					return err
				}
				defer s.Close()
				_, err = s.Next(ctx)
				return err
			},
			"consume": func() error {
				co, err := c.Consumer(ctx, "default", "jobs", fmt.Sprintf("g%d", round))
				if err != nil {
					return err
				}
				defer co.Close()
				m, err := co.Next(ctx)
				if err != nil {
					return err
				}
				return m.Nack(ctx, 0)
			},
			"serve": func() error {
				s, err := c.Serve(ctx, "default", "other", echoHandler)
				if err != nil {
					return err
				}
				return s.Close()
			},
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ran := map[string]int{}
		var bad []string
		started := make(chan struct{}, len(calls))
		for name, f := range calls {
			wg.Go(func() {
				for i := 0; i < 10_000; i++ {
					err := f()
					if i == 0 {
						started <- struct{}{}
					}
					if err == nil {
						mu.Lock()
						ran[name]++
						mu.Unlock()
						continue
					}
					if !errors.Is(err, ErrClosed) || errors.Is(err, ErrDisconnected) {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%s: %v", name, err))
						mu.Unlock()
					}
					return
				}
			})
		}
		for range calls {
			<-started
		}
		returnsWithin(t, 10*time.Second, "Close", func() { c.Close() })
		returnsWithin(t, 10*time.Second, "the calls", wg.Wait)
		if len(bad) > 0 {
			t.Fatalf("round %d: calls racing Close ended with %v (successful calls %v)", round, bad, ran)
		}
	}
}
