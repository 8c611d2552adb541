package client

import (
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A stream that fails because the broker is closing its connection under
// the auth rule (no stream authenticated in time) is tried once more on
// a new connection, also when the failure reaches the stream before the
// connection's context ends: quic-go fails the streams with the close
// error first and cancels the context after (before: retryUnused looked
// only at the context, so a Subscribe racing that close failed, even
// with reconnection disabled: "no stream authenticated within 200ms
// (auth timeout)").
func TestHunt13UnusedCloseSeenByStreamFirstIsRetried(t *testing.T) {
	// The broker closes a connection no stream authenticated on within
	// 300ms: the one slot.get dials below, which nothing uses.
	b := startBroker(t, testbroker.WithServerOptions(server.Options{AuthTimeout: 300 * time.Millisecond}))
	c := dial(t, b, Options{EventConns: 1, Reconnect: ReconnectPolicy{Disabled: true}})
	ctx := testCtx(t)
	slot := c.eventSlots[0]
	closing := &quic.ApplicationError{Remote: true, ErrorCode: 0, ErrorMessage: "no stream authenticated within 200ms " + wire.ConnAuthTimeout}
	tries := 0
	_, err := retryUnused(func() (struct{}, *slotConn, error) {
		tries++
		sc, err := slot.get(ctx)
		if err != nil {
			return struct{}{}, nil, err
		}
		if tries == 1 {
			// The stream saw the broker's close; the connection's context
			// ends after (here: when the broker really closes it).
			return struct{}{}, sc, &ConnectionError{Op: "subscribe", Err: closing}
		}
		return struct{}{}, sc, nil
	})
	if err != nil || tries != 2 {
		t.Fatalf("after %d tries: %v; want a second try on a new connection", tries, err)
	}
}
