package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultNATSURL is where scripts/peers.sh starts nats by default.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// NATSTarget is NATS core pub/sub as a PubSubTarget: one publisher
// connection, and one connection per subscriber (or one shared by all).
// A batch is published as that many nc.Publish calls; Flush is a PING/PONG
// round trip on the publisher's connection. The zero value uses
// DefaultNATSURL, a fresh subject per Setup and nats.go's pending limits.
type NATSTarget struct {
	// URL of the server. Default DefaultNATSURL.
	URL string
	// SharedConn puts every subscriber on one connection instead of one
	// connection each.
	SharedConn bool
	// Subject to use; default a random "felixbench.*" subject per Setup.
	Subject string
	// PendingMsgs and PendingBytes are each subscription's client-side
	// pending limits (nats.go drops past them: a slow consumer, counted as
	// Lost by the harness). 0 keeps nats.go's defaults; -1 is unlimited.
	PendingMsgs, PendingBytes int
	// TLS, when set, connects over TLS with this configuration (the server
	// must serve TLS: NATSServerOptions.TLS), and Name says "nats-tls".
	TLS *tls.Config

	pub       *nats.Conn
	subConns  []*nats.Conn
	subject   string
	asyncErrs atomic.Int64
	lastErr   atomic.Value // error from the async error handler
}

// Name implements PubSubTarget: "nats" or "nats-tls", with "-shared"
// appended with SharedConn.
func (t *NATSTarget) Name() string {
	name := "nats"
	if t.TLS != nil {
		name = "nats-tls"
	}
	if t.SharedConn {
		return name + "-shared"
	}
	return name
}

func (t *NATSTarget) url() string {
	if t.URL == "" {
		return DefaultNATSURL
	}
	return t.URL
}

func (t *NATSTarget) connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.NoReconnect(), // a benchmark fails loudly rather than reconnecting mid-run
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			t.asyncErrs.Add(1)
			t.lastErr.Store(err)
		}),
	}
	if t.TLS != nil {
		opts = append(opts, nats.Secure(t.TLS))
	}
	nc, err := nats.Connect(t.url(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w (is it running? scripts/peers.sh start nats)", t.url(), err)
	}
	return nc, nil
}

// Setup implements PubSubTarget.
func (t *NATSTarget) Setup(ctx context.Context, subscribers int, deliver func(sub int, payload []byte)) (err error) {
	if t.pub != nil {
		return errors.New("nats target is already set up")
	}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	t.subject = t.Subject
	if t.subject == "" {
		t.subject = "felixbench." + rand.Text()
	}
	if t.pub, err = t.connect("felix-bench-pub"); err != nil {
		return err
	}
	for i := range subscribers {
		var nc *nats.Conn
		if t.SharedConn && i > 0 {
			nc = t.subConns[0]
		} else {
			if nc, err = t.connect(fmt.Sprintf("felix-bench-sub-%d", i)); err != nil {
				return err
			}
			t.subConns = append(t.subConns, nc)
		}
		sub, err := nc.Subscribe(t.subject, func(m *nats.Msg) { deliver(i, m.Data) })
		if err != nil {
			return fmt.Errorf("subscribe %d to %s: %w", i, t.subject, err)
		}
		if t.PendingMsgs != 0 || t.PendingBytes != 0 {
			msgs, bytes := t.PendingMsgs, t.PendingBytes
			if msgs == 0 {
				msgs = nats.DefaultSubPendingMsgsLimit
			}
			if bytes == 0 {
				bytes = nats.DefaultSubPendingBytesLimit
			}
			if err := sub.SetPendingLimits(msgs, bytes); err != nil {
				return fmt.Errorf("subscription %d pending limits: %w", i, err)
			}
		}
	}
	// A PING/PONG after the SUBs: once it returns the server has registered
	// every subscription, so the first publish reaches all of them.
	for _, nc := range t.subConns {
		if err := flushNATS(ctx, nc); err != nil {
			return fmt.Errorf("flush subscriptions: %w", err)
		}
	}
	return nil
}

// Publish implements PubSubTarget. nc.Publish copies the payload into the
// connection's buffer, so the slices are free again when it returns.
func (t *NATSTarget) Publish(_ context.Context, payloads [][]byte) error {
	for _, p := range payloads {
		if err := t.pub.Publish(t.subject, p); err != nil {
			return err
		}
	}
	return nil
}

// Flush implements PubSubTarget.
func (t *NATSTarget) Flush(ctx context.Context) error { return flushNATS(ctx, t.pub) }

// AsyncErrors reports how many asynchronous errors (slow consumer, ...)
// the connections saw, and the last one.
func (t *NATSTarget) AsyncErrors() (int64, error) {
	err, _ := t.lastErr.Load().(error)
	return t.asyncErrs.Load(), err
}

// Close implements PubSubTarget.
func (t *NATSTarget) Close() error {
	if t.pub != nil {
		t.pub.Close()
		t.pub = nil
	}
	for _, nc := range t.subConns {
		nc.Close()
	}
	t.subConns = nil
	return nil
}

// flushNATS is nc.FlushWithContext, which insists on a deadline.
func flushNATS(ctx context.Context, nc *nats.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}
