package client

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// dialDarkBroker dials a fake broker that answers the auth of the
// client's streams opened by Dial, and then, as a link that went dark,
// reads the auth of every new stream without ever answering it; each
// such auth is signalled on dark.
func dialDarkBroker(t *testing.T) (c *Client, ctx context.Context, dark <-chan struct{}) {
	t.Helper()
	authOK := authOKFrame(t)
	var isDark atomic.Bool // set once the client is dialed
	darkAuth := make(chan struct{}, 16)
	addr := startFakeBroker(t, transport.Options{}, func(ctx context.Context, _ *quic.Conn, str *quic.Stream) {
		stop := context.AfterFunc(ctx, func() { str.CancelRead(0) })
		defer stop()
		r := wire.NewReader(str, 1<<20)
		if _, err := r.ReadFrame(); err != nil {
			return
		}
		if !isDark.Load() { // Dial's own streams
			_, _ = str.Write(authOK)
			return
		}
		select {
		case darkAuth <- struct{}{}:
		default:
		}
		_, _ = io.Copy(io.Discard, str) // never answers
	})
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx = testCtx(t)
	c, err = Dial(ctx, addr, Options{TLS: tlsConf, PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	isDark.Store(true)
	return c, ctx, darkAuth
}

// A request whose deadline passes while its requester stream is still
// being opened (its auth unanswered) fails as a request timeout, as one
// whose deadline passes later does: ErrRequestTimeout, and its context's
// error.
func TestRequestDeadlineWhileOpeningStream(t *testing.T) {
	c, ctx, _ := dialDarkBroker(t)
	for range 3 { // each opens the stream afresh: the last one never opened
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := c.Request(rctx, "default", "svc", []byte("x"))
		cancel()
		if !errors.Is(err, ErrRequestTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("request while its stream is opened: %v (%T), want ErrRequestTimeout and context.DeadlineExceeded", err, err)
		}
	}
}

// While one request opens the requester stream (a broker that does not
// answer its auth, as a link that went dark), a request with a shorter
// deadline fails by its own deadline, as a request timeout: it does not
// wait for the first one's open, which lasts until that one's (longer)
// deadline.
func TestRequestDeadlineWhileAnotherOpensStream(t *testing.T) {
	c, ctx, dark := dialDarkBroker(t)
	slowDone := make(chan error, 1)
	slowCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() {
		_, err := c.Request(slowCtx, "default", "svc", []byte("slow"))
		slowDone <- err
	}()
	select { // until the slow request is opening the stream
	case <-dark:
	case err := <-slowDone:
		t.Fatalf("the first request ended: %v", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := c.Request(rctx, "default", "svc", []byte("fast"))
	rcancel()
	select {
	case slow := <-slowDone:
		t.Fatalf("the short request returned (%v) only once the long one's open ended (%v)", err, slow)
	default:
	}
	if !errors.Is(err, ErrRequestTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request while another opens the stream: %v (%T), want ErrRequestTimeout", err, err)
	}
	cancel()
	if err := <-slowDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the first request, cancelled: %v", err)
	}
}
