package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testStream is declared on every test broker.
const testStream = "default/default/demo"

// startBroker runs a broker with lossless subscriber queues and the demo
// stream declared.
func startBroker(t testing.TB, opts ...testbroker.Option) *testbroker.Broker {
	t.Helper()
	base := []testbroker.Option{
		testbroker.WithStreams(testStream, "default/default/other"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block, QueueCapacity: 4096}),
	}
	return testbroker.Start(t, append(base, opts...)...)
}

// dial connects a client to b; it is closed when the test ends.
func dial(t testing.TB, b *testbroker.Broker, opts Options) *Client {
	t.Helper()
	opts.TLS = b.ClientTLS
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, b.Addr, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testCtx is a context bounded well below the test binary's timeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectEvents reads len(want) events and compares their payloads in order.
func expectEvents(t testing.TB, ctx context.Context, sub *Subscription, want []string) {
	t.Helper()
	for i, w := range want {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d of %d: %v", i, len(want), err)
		}
		if string(ev.Payload) != w {
			t.Fatalf("event %d = %q, want %q", i, ev.Payload, w)
		}
	}
}

func payloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func asBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func isServerError(err error, prefix string) bool {
	var se *ServerError
	return errors.As(err, &se) && len(se.Message) >= len(prefix) && se.Message[:len(prefix)] == prefix
}

// subscribe subscribes or fails the test; the subscription is closed when
// the test ends.
func subscribe(t testing.TB, ctx context.Context, c *Client, ns, stream string, opts ...SubscribeOption) *Subscription {
	t.Helper()
	sub, err := c.Subscribe(ctx, ns, stream, opts...)
	if err != nil {
		t.Fatalf("Subscribe %s/%s: %v", ns, stream, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// setup starts a broker and connects a client with opts to it.
func setup(t *testing.T, opts Options) (*testbroker.Broker, *Client, context.Context) {
	t.Helper()
	b := startBroker(t)
	return b, dial(t, b, opts), testCtx(t)
}

// publishAfterRestart publishes payload to default/stream right after the
// test restarted its broker. The client may not have seen the old
// broker's connection close yet: a publish on it fails with a
// *ConnectionError, as documented, and stored nothing (that broker is
// gone), so it is sent again, a few times at most.
func publishAfterRestart(t testing.TB, ctx context.Context, c *Client, stream string, payload []byte) {
	t.Helper()
	for try := 0; ; try++ {
		err := c.Publish(ctx, "default", stream, payload)
		if err == nil {
			return
		}
		var ce *ConnectionError
		if !errors.As(err, &ce) || try == 3 {
			t.Fatalf("publish after the restart (try %d): %v", try, err)
		}
	}
}
