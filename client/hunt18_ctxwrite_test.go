package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// stallPublishers makes b stop reading publish streams of default/demo:
// a second client subscribes with a handler that blocks until the
// returned release is called, so the broker's Block queue for it fills
// and the stream's publishers wait (the broker no longer reads their
// streams, whose flow-control windows then fill). got returns the
// payloads the handler has seen.
func stallPublishers(t *testing.T, ctx context.Context, b *testbroker.Broker) (release func(), got func() map[string]bool) {
	t.Helper()
	sc := dial(t, b, Options{EventConns: 1})
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	gate := make(chan struct{})
	sub, err := sc.SubscribeFunc(ctx, "default", "demo", func(ev Event) error {
		<-gate
		mu.Lock()
		seen[strings.TrimRight(string(ev.Payload), "\x00")] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { release(); sub.Close() })
	return release, func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]bool, len(seen))
		for k := range seen {
			out[k] = true
		}
		return out
	}
}

// A publish whose context ends while its frame waits for flow-control
// credit (the broker applies backpressure) must not disturb the publish
// stream it shares: fire-and-forget publishes written before it on the
// same stream, which returned nil, must still reach the broker. (Ending
// the session over the interrupted write resets the stream, and the
// broker discards every frame it has not read yet.)
func TestHunt18CancelledPublishKeepsStream(t *testing.T) {
	b := startBroker(t, testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block, QueueCapacity: 4}))
	c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1})
	ctx := testCtx(t)
	release, got := stallPublishers(t, ctx, b)

	payload := func(i int) []byte {
		p := make([]byte, 4<<10)
		copy(p, fmt.Sprintf("ff-%d", i))
		return p
	}
	var written []string
	for i := 0; ; i++ {
		if i == 100000 {
			t.Fatal("the broker never applied backpressure")
		}
		p := payload(i)
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.Publish(pctx, "default", "demo", p, WithAck(wire.AckNone))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		written = append(written, fmt.Sprintf("ff-%d", i))
	}
	release()
	if err := c.Publish(ctx, "default", "demo", []byte("end")); err != nil {
		t.Fatalf("publish after the cancelled one: %v", err)
	}
	testwait.Eventually(t, "the end marker at the subscriber", func() bool { return got()["end"] })
	seen := got()
	var lost []string
	for _, w := range written {
		if !seen[w] {
			lost = append(lost, w)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d fire-and-forget publishes that returned nil were lost after a later publish's context ended during its write (first %s)",
			len(lost), len(written), lost[0])
	}
}
