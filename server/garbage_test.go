package server_test

import (
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// Random datagrams (and a truncated QUIC-looking Initial) sent straight at
// the broker's UDP port must not disturb it or its existing connections.
func TestGarbageDatagramsOnSocket(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", nil)

	u, err := net.Dial("udp", tb.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, 1+rng.IntN(1400))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%3 == 0 {
			b[0] = 0xc0 // long header, Initial-looking
		}
		u.Write(b)
	}
	s.sendMsg(&wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("still here"), RequestID: wire.U64(1)})
	s.expectJSON(`{"type":"publish_ok","request_id":1}`)
	c2 := dialRaw(t, tb) // and new connections are still accepted
	s2 := c2.open()
	s2.auth("t1", nil)
}

// A stream that starts a frame and never finishes its auth is reset after
// AuthTimeout (and counted as an auth failure): an unauthenticated peer
// cannot hold streams open. Control and publish-only streams alike.
//
// The connection's first stream must authenticate within AuthTimeout of
// the dial (else the connection's own deadline ends everything): on a
// loaded machine that set-up may overrun, and testbroker.Retry then tries
// again with twice the timeout.
func TestStreamWithoutAuthTimesOut(t *testing.T) {
	testbroker.Retry(t, 200*time.Millisecond, 5, func(a *testbroker.Attempt) {
		tb := testbroker.Start(a, testbroker.WithServerOptions(server.Options{AuthTimeout: a.Limit}))
		// One stream authenticates first: a connection with none is closed
		// at its own AuthTimeout deadline (hunt6_connauth_test.go), which
		// would end the streams below with it.
		a.SetupBy(time.Now().Add(a.Limit))
		c := dialRaw(a, tb)
		c.open().auth("t1", nil)
		a.SetupDone()
		s := c.open()
		s.send([]byte{0x46, 0x4c, 0x58}) // part of a header, then nothing
		s.expectEnd()

		us, err := c.cc.Conn.OpenUniStream()
		if err != nil {
			a.Fatal(err)
		}
		if _, err := us.Write([]byte{0x46, 0x4c}); err != nil {
			a.Fatal(err)
		}
		deadline := time.Now().Add(a.Limit + 10*time.Second)
		for tb.Server.Stats().AuthFailures.Load() < 2 {
			if time.Now().After(deadline) {
				a.Fatalf("auth failures %d, want both streams timed out", tb.Server.Stats().AuthFailures.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		// The connection is fine: a stream that authenticates works.
		s2 := c.open()
		s2.auth("t1", nil)
	})
}
