package server_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A publish-only stream serves no frame read at or after its token's
// expiry, not even frames already in its read buffer; it ends as an
// expired control stream does (reset with code 3, counted once).
//
// The verifier's clock runs an hour behind, so a token that expired half an
// hour ago still authenticates: every frame after the auth frame, all sent
// in one write and so buffered by the broker with it, is read after the
// expiry.
func TestUniStreamServesNoFrameAfterExpiry(t *testing.T) {
	now := time.Now()
	v := auth.Verifier{Leeway: -1, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	tb, sg := startTokenBroker(t, v, server.Options{}, testbroker.WithStreams("a/default/demo"))
	tok := issue(t, sg, auth.Claims{Tenant: "a", Subject: "late", Perms: []string{"stream.publish:stream:a/default/demo"},
		IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-30 * time.Minute)})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	uni := dialRaw(t, tb).openUni(ctx)
	b, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "a", Token: tok})
	for range 10 {
		b, _ = wire.AppendPublishBatchFrame(b, "a", "default", "demo", [][]byte{[]byte("late")})
	}
	if _, err := uni.Write(b); err != nil {
		t.Fatal(err)
	}
	// The broker authenticated the stream and reset it at once: the token
	// has expired by the broker's clock.
	select {
	case <-uni.Context().Done():
	case <-ctx.Done():
		t.Fatal("the publish-only stream was not ended")
	}
	_, err := uni.Write(b)
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != 3 {
		t.Fatalf("write after expiry: %v, want the stream reset with code 3", err)
	}
	waitNoGoroutine(t, "server.(*conn).handleUni")
	if n := published(tb, "a"); n != 0 {
		t.Errorf("%d events published from frames read after the token expired, want 0", n)
	}
	if n := tb.Server.Stats().TokenExpiries.Load(); n != 1 {
		t.Errorf("token expiries counted %d, want 1", n)
	}
}

// waitNoGoroutine waits until no goroutine runs fn (a server handler, so
// that what it did is done), or fails after 10 s.
func waitNoGoroutine(t testing.TB, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte(fn)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still running", fn)
		}
		time.Sleep(time.Millisecond)
	}
}

// openUni opens a publish-only stream.
func (c *rawConn) openUni(ctx context.Context) *quic.SendStream {
	c.t.Helper()
	us, err := c.cc.Conn.OpenUniStreamSync(ctx)
	if err != nil {
		c.t.Fatalf("open uni stream: %v", err)
	}
	return us
}
