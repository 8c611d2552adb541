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

// A token's rights end when it expires, also on streams it opened before:
// the control stream, a subscription's event stream and a publish-only
// stream are reset with code 3 at exp (plus the verifier's leeway, none
// here), the token no longer authenticates new streams, and the resets are
// counted. Streams of a fresh token on the same connection go on.
func TestExpiredTokenEndsItsStreams(t *testing.T) {
	// The token must outlast the set-up below (a few round trips); a try
	// whose set-up it did not outlast is tried again with a longer one.
	testbroker.Retry(t, expiryFirstLifetime, expiryTries, func(a *testbroker.Attempt) {
		tb, sg := startTokenBroker(a, auth.Verifier{Leeway: -1}, server.Options{}, testbroker.WithStreams("a/ns/s"))
		perms := []string{"stream.*:stream:a/ns/s"}
		long := issue(a, sg, auth.Claims{Tenant: "a", Subject: "long", Perms: perms, ExpiresAt: time.Now().Add(time.Hour)})
		c := dialRaw(a, tb)

		short, exp := shortLived(a, sg, auth.Claims{Tenant: "a", Subject: "short", Perms: perms})
		a.SetupBy(exp)
		ctl := c.open()
		if !ctl.authWith("a", short) {
			a.Fatal("short-lived token refused")
		}
		sub := c.open()
		if !sub.authWith("a", short) {
			a.Fatal("short-lived token refused")
		}
		sub.sendMsg(&wire.Subscribe{TenantID: "a", Namespace: "ns", Stream: "s"})
		sub.expectJSON(`{"type":"subscribed","subscription_id":1}`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		us, err := c.cc.Conn.AcceptUniStream(ctx)
		if err != nil {
			a.Fatal(err)
		}
		us.SetReadDeadline(time.Now().Add(10 * time.Second))
		ev := &rawStream{t: a, r: wire.NewReader(us, 0)}
		ev.expectJSON(`{"type":"event_stream_hello","subscription_id":1}`)
		uni, err := c.cc.Conn.OpenUniStreamSync(ctx)
		if err != nil {
			a.Fatal(err)
		}
		authFrame, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "a", Token: short})
		if _, err := uni.Write(authFrame); err != nil {
			a.Fatal(err)
		}
		keep := c.open()
		if !keep.authWith("a", long) {
			a.Fatal("long-lived token refused")
		}

		// Until then the token works: a publish reaches the subscription.
		pub, _ := wire.AppendAckedPublishBatchFrame(nil, 1, wire.AckPerBatch, "a", "ns", "s", [][]byte{[]byte("before")})
		ctl.send(pub)
		ctl.expect(wire.AppendPublishAckFrame(nil, 1, true, ""))
		ev.expect(wire.AppendEventBatchFrame(nil, true, 0, [][]byte{[]byte("before")})) // allCaps has CapMemOffsets
		a.SetupDone()

		// Then the control stream and the event stream are reset with code 3.
		for name, s := range map[string]*rawStream{"control": ctl, "event": ev} {
			_, err := s.r.ReadFrame()
			var se *quic.StreamError
			if !errors.As(err, &se) || se.ErrorCode != 3 {
				a.Fatalf("%s stream after expiry: %v, want a reset with code 3", name, err)
			}
		}
		// The publish-only stream is refused: writes end with code 3. (Its
		// frames are valid unacked publishes: anything else would end it
		// before the expiry does.)
		unacked, _ := wire.AppendPublishBatchFrame(nil, "a", "ns", "s", [][]byte{[]byte("late")})
		for uni.Context().Err() == nil {
			if _, err := uni.Write(unacked); err != nil {
				break
			}
			select {
			case <-ctx.Done():
				a.Fatal("the publish-only stream was not ended")
			case <-time.After(20 * time.Millisecond):
			}
		}
		n := tb.Server.Stats().TokenExpiries.Load()
		if n == 2 && tb.Server.Stats().AuthFailures.Load() == 1 {
			// Nothing answers a publish-only stream's auth: this one was
			// refused, so it reached the broker after the expiry.
			a.Inconclusive("the publish-only stream's auth reached the broker after the token expired")
		}
		if n != 3 {
			a.Errorf("token expiries counted %d, want 3 (control, subscription, publish-only)", n)
		}
		// The token opens nothing any more; the other token's stream goes on.
		if again := c.open(); again.authWith("a", short) {
			a.Error("an expired token authenticated a new stream")
		}
		keep.send(pub)
		keep.expect(wire.AppendPublishAckFrame(nil, 1, true, ""))
	})
}

// expiryFirstLifetime is the shortest lifetime of the short-lived tokens
// of the expiry tests (they last 1 to 2 s: exp has whole seconds), and
// expiryTries how many times testbroker.Retry doubles it when a try's
// set-up did not finish before the token expired.
const (
	expiryFirstLifetime = time.Second
	expiryTries         = 4
)

// shortLived issues c to expire at least a.Limit from now (at most a
// second later: exp has whole seconds) and returns it with its expiry.
func shortLived(a *testbroker.Attempt, sg *auth.Signer, c auth.Claims) (string, time.Time) {
	a.Helper()
	c.ExpiresAt = time.Now().Add(a.Limit + time.Second).Truncate(time.Second)
	return issue(a, sg, c), c.ExpiresAt
}
