package server_test

import (
	"testing"

	"github.com/felixmq/felix/wire"
)

// A subscribe refused after its id was reserved (the stream does not
// exist) frees the id: the same id subscribes at once afterwards, and many
// refused subscribes leave no id or subscription slot behind.
func TestSubscriptionIDFreedWhenSubscribeFails(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	const id = 77
	for range 300 {
		if _, ok := c.subscribeRaw(t, "no-such-stream", wire.U64(id)).(*wire.Subscribed); ok {
			t.Fatal("subscribed to a stream that does not exist")
		}
	}
	if m, ok := c.subscribeRaw(t, "demo", wire.U64(id)).(*wire.Subscribed); !ok || m.SubscriptionID != id {
		t.Fatalf("id %d after failed subscribes: %#v", id, m)
	}
}
