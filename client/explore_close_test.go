package client

import (
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// Fire-and-forget publishes made just before Client.Close reach the broker:
// Close does not throw away frames it has accepted (what `felix pub
// --no-ack` relies on: it publishes, then closes the client).
func TestCloseDeliversFireAndForget(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	stream, err := b.Broker.Stream("default", "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1})
	const n = 100
	for i := range n {
		if err := c.Publish(ctx, "default", "demo", []byte{byte(i)}, WithAck(wire.AckNone)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, stream, n, "fire-and-forget events published before Close")
}

// A batching Publisher with NoAck, closed and then its client closed,
// delivers everything it accepted.
func TestCloseDeliversNoAckPublisher(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	stream, _ := b.Broker.Stream("default", "default", "demo")
	c := dial(t, b, Options{})
	p := c.Publisher("default", "demo", PublisherOptions{NoAck: true})
	const n = 1000
	for i := range n {
		if err := p.Publish(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, stream, n, "events of a closed NoAck publisher")
}

// waitPublished waits until stream has n events published.
func waitPublished(t *testing.T, stream *broker.Stream, n uint64, what string) {
	t.Helper()
	for deadline := time.Now().Add(testwait.Liveness); stream.Stats().Published < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker has %d of the %d %s", stream.Stats().Published, n, what)
		}
	}
}
