package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// hunt19MaxRequest is the largest payload Client.Request sends to
// default/service within the frame limit frame (JSON: base64), with a
// 5-digit timeout_ms.
func hunt19MaxRequest(t testing.TB, frame int, service string) int {
	t.Helper()
	size := func(n int) int {
		f, err := wire.AppendMessageFrame(nil, &wire.Request{TenantID: "default", Namespace: "default", Service: service,
			Payload: make([]byte, n), TimeoutMs: wire.U64(59999), RequestID: 1})
		if err != nil {
			t.Fatal(err)
		}
		return len(f) - wire.HeaderSize
	}
	n := (frame - size(0)) / 4 * 3
	for size(n+1) <= frame {
		n++
	}
	return n
}

// Requests and replies of 0 B to 1 MiB go through the broker byte-exact;
// a reply too large for a frame (13/16 of the frame limit hunt19Frame,
// base64) reaches the requester as an error (never a hang) and the
// responder goes on serving.
func TestHunt19ServiceLargeRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	rc := hunt19Echo(t, ctx)
	for _, size := range []int{0, 1, 64 * kib, 64*kib + 3, 256 * kib, mib} {
		req := hunt19Payload(uint64(size), size)
		got, err := rc.Request(ctx, "default", "echo", req)
		if err != nil {
			t.Fatalf("request of %d bytes: %v", size, err)
		}
		slices.Reverse(got)
		if hunt19Sum(got) != hunt19Sum(req) {
			t.Fatalf("reply to %d bytes: %d bytes, not the request reversed", size, len(got))
		}
	}
	if got, err := rc.Request(ctx, "default", "echo", []byte("big:1m")); err != nil || hunt19Sum(got) != hunt19Sum(hunt19Payload(77, mib)) {
		t.Fatalf("1 MiB reply: %d bytes, %v", len(got), err)
	}
	// A reply whose base64 does not fit a frame.
	_, err := rc.Request(ctx, "default", "echo", []byte("big:frame"))
	var re *client.ResponderError
	var se *client.ServerError
	if !errors.As(err, &re) && !errors.As(err, &se) {
		t.Fatalf("reply of %d bytes: %v, want a responder or server error", hunt19BigReply, err)
	}
	t.Logf("reply of %d bytes: %v", hunt19BigReply, err)
	hunt19EchoOK(t, ctx, rc, "a reply too large")
}

// The largest request a frame carries (about 3/4 of the frame limit
// hunt19Frame, in base64) is answered byte-exact, or refused with a clear
// error; one byte more is refused by the SDK; the same requester and
// responder go on.
func TestHunt19ServiceLargestRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	rc := hunt19Echo(t, ctx)
	max := hunt19MaxRequest(t, hunt19Frame, "echo")
	var re *client.ResponderError
	var se *client.ServerError
	req := hunt19Payload(5, max)
	got, err := rc.Request(ctx, "default", "echo", req)
	if err == nil {
		slices.Reverse(got)
		if hunt19Sum(got) != hunt19Sum(req) {
			t.Fatalf("reply to the largest request (%d bytes): %d bytes, not the request reversed", max, len(got))
		}
	} else if !errors.As(err, &se) && !errors.As(err, &re) {
		t.Fatalf("largest request (%d bytes): %v, want a reply or a clear refusal", max, err)
	}
	t.Logf("largest request (%d bytes): %v", max, err)
	hunt19EchoOK(t, ctx, rc, "the largest request")
	if _, err := rc.Request(ctx, "default", "echo", hunt19Payload(6, max+1)); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("request of %d bytes: %v, want wire.ErrFrameTooLarge", max+1, err)
	}
	hunt19EchoOK(t, ctx, rc, "a request too large")
}

// hunt19BigReply is a reply whose base64 passes the frame limit
// hunt19Frame.
const hunt19BigReply = hunt19Frame / 16 * 13

// hunt19Echo starts a broker and an echo service (the reply is the
// request reversed; "big:frame" and "big:1m" are answered with
// hunt19BigReply bytes and 1 MiB), both at the frame limit hunt19Frame,
// and returns a requester client with that limit.
func hunt19Echo(t *testing.T, ctx context.Context) *client.Client {
	t.Helper()
	tb := testbroker.Start(t, hunt19Server(hunt19Frame))
	c := hunt19Dial(t, tb, hunt19Frame, client.Options{})
	svc, err := c.Serve(ctx, "default", "echo", func(_ context.Context, req []byte) ([]byte, error) {
		if n, ok := strings.CutPrefix(string(req), "big:"); ok {
			size := map[string]int{"frame": hunt19BigReply, "1m": mib}[n]
			return hunt19Payload(77, size), nil
		}
		out := slices.Clone(req)
		slices.Reverse(out)
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return hunt19Dial(t, tb, hunt19Frame, client.Options{})
}

// hunt19EchoOK checks that the echo service still answers through rc.
func hunt19EchoOK(t *testing.T, ctx context.Context, rc *client.Client, what string) {
	t.Helper()
	got, err := rc.Request(ctx, "default", "echo", []byte("ab"))
	if err != nil || string(got) != "ba" {
		t.Fatalf("request after %s: %q, %v", what, got, err)
	}
}
