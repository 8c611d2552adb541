package server_test

import (
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A stream that never authenticates is reset at AuthTimeout even when the
// broker is blocked writing to it: frames with unknown flags are each
// answered before auth, and a client that sends many and reads none fills
// its receive window, so the broker's answer blocks. The auth deadline
// covers that write as it covers the read (operations.md, --auth-timeout),
// or one authenticated connection could hold every stream it may open,
// unauthenticated, for good.
func TestHunt14UnauthenticatedStreamBlockedInWriteIsReset(t *testing.T) {
	flood := answerFlood()
	testbroker.Retry(t, 200*time.Millisecond, 5, func(a *testbroker.Attempt) {
		tb := testbroker.Start(a, testbroker.WithServerOptions(server.Options{AuthTimeout: a.Limit}))
		a.SetupBy(time.Now().Add(a.Limit))
		c := dialRaw(a, tb)
		c.open().auth("t1", nil) // the connection's own deadline is lifted
		a.SetupDone()
		s := c.open()
		s.lenient = true
		s.send(flood) // and read nothing
		select {
		case <-s.s.Context().Done(): // the broker stopped reading the stream: it ended it
		case <-time.After(a.Limit + 3*time.Second):
			a.Fatalf("the unauthenticated stream is still open %v after the auth timeout %v", 3*time.Second, a.Limit)
		}
		deadline := time.Now().Add(3 * time.Second)
		for tb.Server.Stats().AuthFailures.Load() < 1 {
			if time.Now().After(deadline) {
				a.Fatal("the auth timeout was not counted as an auth failure")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// answerFlood returns frames with an unknown flag bit, each answered by
// the broker with a 64-byte error: 2.5 MB of answers from 480 kB sent,
// more than a client's 1 MiB stream window holds when it reads none.
func answerFlood() []byte {
	unknown := wire.AppendFrame(nil, 0x8000, nil)
	var flood []byte
	for range 40000 {
		flood = append(flood, unknown...)
	}
	return flood
}
