package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

// A session a rotation opened is not itself rotated before it carries
// publishes (before the session it replaces has ended): with a source
// whose every token is already due for rotation (a long-past iat) but
// fresher than the last, rotations follow each other as fast as streams
// open, and fire-and-forget publishes still reach the stream once each, in
// the order they were made.
func TestRotationChainKeepsPublishOrder(t *testing.T) {
	b := startBroker(t)
	base := time.Now().Add(20 * time.Second).Unix()
	var calls atomic.Int64
	c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1,
		TokenSource: func(context.Context) (string, error) {
			k := calls.Add(1)
			return unsignedJWT(fmt.Sprintf(`{"iat":%d,"exp":%d}`, base-3600, base+k)), nil
		}})
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		p := binary.BigEndian.AppendUint64(nil, uint64(i))
		if err := c.Publish(ctx, "default", "demo", p, WithAck(wire.AckNone)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for i := range n {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v (token source called %d times)", i, err, calls.Load())
		}
		if got := binary.BigEndian.Uint64(ev.Payload); got != uint64(i) {
			t.Fatalf("event %d carries publish %d (token source called %d times)", i, got, calls.Load())
		}
	}
	t.Logf("token source called %d times", calls.Load())
}
