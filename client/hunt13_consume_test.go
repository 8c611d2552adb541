package client

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
)

// Consume goes on across broker restarts (rejoining the group, whose
// state is on disk): it returns only when its context ends, and every
// record published is handled, the acked ones once.
func TestHunt13ConsumeAcrossRestarts(t *testing.T) {
	b := startKeptQueueBroker(t)
	c := dial(t, b, Options{Reconnect: fastReconnect})
	ctx := testCtx(t)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	handled := map[uint64]int{}
	progress := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Consume(cctx, "default", "jobs", "g", func(_ context.Context, m *Message) error {
			mu.Lock()
			handled[binary.BigEndian.Uint64(m.Payload)]++
			mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
			return nil
		}, WithPrefetch(4))
	}()
	const rounds, per = 3, 30
	waitHandled := func(n uint64) {
		t.Helper()
		for {
			mu.Lock()
			k := uint64(len(handled))
			mu.Unlock()
			if k >= n {
				return
			}
			select {
			case <-progress:
			case err := <-errc:
				t.Fatalf("Consume returned %v with %d of %d records handled", err, k, n)
			case <-ctx.Done():
				t.Fatalf("%d of %d records handled", k, n)
			}
		}
	}
	next := uint64(0)
	for r := range rounds {
		for i := range per {
			p := binary.BigEndian.AppendUint64(nil, next)
			if i == 0 && r > 0 {
				publishAfterRestart(t, ctx, c, "jobs", p)
			} else if err := c.Publish(ctx, "default", "jobs", p); err != nil {
				t.Fatal(err)
			}
			next++
		}
		waitHandled(next - per/2)
		if r < rounds-1 {
			b.Restart()
		}
	}
	waitHandled(next)
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Consume: %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range handled {
		dups += n - 1
	}
	t.Logf("%d records handled, %d redeliveries", len(handled), dups)
}
