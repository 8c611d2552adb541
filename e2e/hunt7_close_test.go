//go:build unix

package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/wire"
)

// One SDK client using everything at once (acked and fire-and-forget
// publishes, a durable subscription read with Next, a consumer read by
// hand and one by Consume, cache puts and gets, queue stats), every call
// bounded by a context, when the broker process goes away under it:
// killed (SIGKILL: the port answers nothing, or stateless resets), or
// frozen (SIGSTOP: the connections stay up, nothing answers). Client.Close
// then returns within the documented bound (5 s, or RequestTimeout if
// shorter, for the fire-and-forget flush), every goroutine blocked in a
// call returns promptly after it, and the client leaves no goroutine.
func TestHunt7CloseWhileBrokerGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"killed", syscall.SIGKILL}, {"frozen", syscall.SIGSTOP}} {
		t.Run(tc.name, func(t *testing.T) {
			leakOpts := []goleak.Option{goleak.IgnoreCurrent()}
			bin, dataDir, addr := processTest(t)
			p := startFelix(t, bin, addr, dataDir, "--durable-stream", "default/default/jobs", "--cache", "default/default/kv")
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					p.cmd.Process.Signal(syscall.SIGKILL)
					p.cmd.Process.Signal(syscall.SIGCONT)
					<-p.done
				}
			}
			defer stop()
			dialProc(t, addr, dataDir).Close() // up
			// Close's flush is bounded by RequestTimeout, else by 5 s
			// (closeFlushTimeout): a short RequestTimeout keeps the bound
			// checked below 2 s from both the expected Close and the one
			// that ignored RequestTimeout, and far from a hang (20 s).
			const requestTimeout = time.Second
			const closeFlushTimeout = 5 * time.Second
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := client.Dial(dctx, addr, client.Options{CAFile: filepath.Join(dataDir, "dev-cert.pem"),
				RequestTimeout: requestTimeout, Reconnect: client.ReconnectPolicy{MaxBackoff: 200 * time.Millisecond}})
			dcancel()
			if err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			lastErr := map[string]error{}
			// loop runs f until the client is closed, each call bounded by
			// a long context: a call still running 5 s after Close hung.
			loop := func(name string, f func(ctx context.Context) error) {
				wg.Go(func() {
					for {
						select {
						case <-closed:
							return
						default:
						}
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						err := f(ctx)
						cancel()
						mu.Lock()
						lastErr[name] = err
						mu.Unlock()
						if err != nil {
							time.Sleep(20 * time.Millisecond)
						}
					}
				})
			}
			n := uint64(0)
			loop("publish acked", func(ctx context.Context) error {
				n++
				return c.Publish(ctx, "default", "jobs", hunt7Payload(n))
			})
			m := uint64(1 << 40)
			loop("publish fire-and-forget", func(ctx context.Context) error {
				m++
				time.Sleep(time.Millisecond)
				return c.Publish(ctx, "default", "jobs", hunt7Payload(m), client.WithAck(wire.AckNone))
			})
			kv := c.Cache("default", "kv")
			k := 0
			loop("cache", func(ctx context.Context) error {
				k++
				if _, err := kv.Put(ctx, fmt.Sprint(k%5), []byte("v"), client.WithTTL(time.Second)); err != nil {
					return err
				}
				_, _, err := kv.Get(ctx, fmt.Sprint(k%5))
				return err
			})
			loop("queue stats", func(ctx context.Context) error {
				time.Sleep(50 * time.Millisecond)
				_, err := c.QueueStats(ctx, "default", "jobs", "g")
				if errors.Is(err, client.ErrQueueGroupNotFound) {
					return nil
				}
				return err
			})
			sub, err := c.Subscribe(context.Background(), "default", "jobs", client.FromEarliest())
			if err != nil {
				t.Fatal(err)
			}
			loop("subscription", func(ctx context.Context) error {
				_, err := sub.Next(ctx)
				return err
			})
			loop("consumer", func(ctx context.Context) error {
				start := time.Now()
				co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(4))
				if err != nil {
					return fmt.Errorf("join (after %v): %w", time.Since(start).Round(time.Millisecond), err)
				}
				defer co.Close()
				for {
					msg, err := co.Next(ctx)
					if err != nil {
						return fmt.Errorf("next: %w", err)
					}
					start := time.Now()
					if err := msg.Ack(ctx); err != nil {
						return fmt.Errorf("ack (after %v): %w", time.Since(start).Round(time.Millisecond), err)
					}
				}
			})
			loop("consume", func(ctx context.Context) error {
				cctx, ccancel := context.WithCancel(ctx)
				defer ccancel()
				go func() {
					select {
					case <-closed:
						ccancel()
					case <-cctx.Done():
					}
				}()
				return c.Consume(cctx, "default", "jobs", "g", func(context.Context, *client.Message) error { return nil },
					client.WithAsyncAck(), client.WithPrefetch(4))
			})

			time.Sleep(1500 * time.Millisecond)
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)

			start := time.Now()
			closeErr := make(chan error, 1)
			go func() { closeErr <- c.Close() }()
			select {
			case <-closeErr:
			case <-time.After(20 * time.Second):
				t.Fatalf("Client.Close did not return within 20 s of a %s broker", tc.name)
			}
			took := time.Since(start)
			close(closed)
			callsDone := make(chan struct{})
			go func() { wg.Wait(); close(callsDone) }()
			select {
			case <-callsDone:
			case <-time.After(15 * time.Second): // the calls' contexts end at 30 s
				t.Fatalf("calls still blocked 15 s after Client.Close returned")
			}
			t.Logf("Close took %v; last errors: %v", took.Round(time.Millisecond), lastErr)
			if bound := (requestTimeout + closeFlushTimeout) / 2; took > bound {
				t.Errorf("Client.Close took %v with a %s broker (over %v; bound: RequestTimeout %v)", took, tc.name, bound, requestTimeout)
			}
			for name, err := range lastErr {
				// ErrClosed, or the end of a RequestTimeout that ran out
				// while Close waited for the fire-and-forget flush.
				if err != nil && !errors.Is(err, client.ErrClosed) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: the call in flight at Close returned %v, want ErrClosed", name, err)
				}
			}
			stop() // its process goroutines are not the client's
			leakStart := time.Now()
			err = goleak.Find(leakOpts...)
			t.Logf("goleak.Find took %v", time.Since(leakStart).Round(time.Millisecond))
			if err != nil {
				t.Errorf("goroutines left after Client.Close: %v", err)
			}
		})
	}
}
