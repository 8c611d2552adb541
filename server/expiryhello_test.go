package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A subscription whose token expires before the client has read its event
// stream's hello: the client must still get the hello, then the reset with
// code 3, or it cannot tell which subscription the reset stream was (the
// SDK pairs event streams by the hello's id) and its Subscribe waits out
// its request timeout for a stream that will never come. A plain
// RESET_STREAM discards what the client has not read, hello included; a
// RESET_STREAM_AT whose reliable size covers the hello (both sides offer
// it) keeps it.
//
// Before the broker set the reliable boundary after the hello, this failed
// every run; seen as Subscribe failing with "context deadline exceeded"
// after 30 s in TestInMemorySubscriptionResumesPastAGap on a loaded
// machine, where the token expired during the subscribe.
func TestExpiryBeforeHelloReadKeepsHello(t *testing.T) {
	// The subscription must be made before the token expires; a try whose
	// set-up the token did not outlast is tried again with a longer one.
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, sg := startTokenBroker(a, auth.Verifier{Leeway: -1}, server.Options{}, testbroker.WithStreams("a/ns/s"))
		perms := []string{"stream.*:stream:a/ns/s"}
		long := issue(a, sg, auth.Claims{Tenant: "a", Subject: "long", Perms: perms, ExpiresAt: time.Now().Add(time.Hour)})
		c := dialRaw(a, tb)
		if !c.cc.Conn.ConnectionState().SupportsStreamResetPartialDelivery.Remote {
			a.Fatal("the broker does not offer RESET_STREAM_AT")
		}
		keep := c.open()
		if !keep.authWith("a", long) {
			a.Fatal("long-lived token refused")
		}
		// The set-up: the subscription is made before the token expires.
		short, exp := shortLived(a, sg, auth.Claims{Tenant: "a", Subject: "short", Perms: perms})
		a.SetupBy(exp)
		sub := c.open()
		if !sub.authWith("a", short) {
			a.Fatal("short-lived token refused")
		}
		sub.sendMsg(&wire.Subscribe{TenantID: "a", Namespace: "ns", Stream: "s"})
		sub.expectJSON(`{"type":"subscribed","subscription_id":1}`)
		a.SetupDone()

		// The event stream is not read until the broker has reset it: its
		// subscription is gone (the reset comes first), and a round trip on
		// another stream afterwards brings the reset along.
		deadline := time.Now().Add(20 * time.Second)
		for tb.Server.Stats().TokenExpiries.Load() == 0 || tb.Server.Stats().Subscriptions.Load() != 0 {
			if time.Now().After(deadline) {
				a.Fatalf("no expiry 20 s after a %v token (expiries %d, subscriptions %d)", a.Limit,
					tb.Server.Stats().TokenExpiries.Load(), tb.Server.Stats().Subscriptions.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		pub, _ := wire.AppendAckedPublishBatchFrame(nil, 1, wire.AckPerBatch, "a", "ns", "s", [][]byte{[]byte("x")})
		keep.send(pub)
		keep.expect(wire.AppendPublishAckFrame(nil, 1, true, ""))

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		us, err := c.cc.Conn.AcceptUniStream(ctx)
		if err != nil {
			a.Fatal(err)
		}
		us.SetReadDeadline(time.Now().Add(10 * time.Second))
		ev := &rawStream{t: a, r: wire.NewReader(us, 0)}
		f, err := ev.r.ReadFrame()
		if err != nil {
			a.Fatalf("event stream reset at expiry before its hello was read: %v; want the hello, then the reset", err)
		}
		if got, want := string(f.Payload), `{"type":"event_stream_hello","subscription_id":1}`; got != want {
			a.Fatalf("first frame %q, want %q", got, want)
		}
		_, err = ev.r.ReadFrame()
		var se *quic.StreamError
		if !errors.As(err, &se) || se.ErrorCode != 3 {
			a.Fatalf("after the hello: %v, want a reset with code 3", err)
		}
	})
}
