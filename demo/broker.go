package demo

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/embed"
	"github.com/felixmq/felix/server"
)

// needs is what a demo needs declared on its broker.
type needs struct {
	streams        []string // tenant/ns/name, in memory
	durableStreams []string // tenant/ns/name, on disk (queues need them)
	caches         []string // tenant/ns/name
	broker         broker.Options
	queues         server.QueueOptions
	// serveFlags are extra `felix serve` flags an external broker needs
	// for the demo's claims (e.g. --queue-policy block).
	serveFlags []string
}

// declared lists what n declares as (kind, tenant/ns/name) pairs, kind
// being "stream", "durable-stream" or "cache" (the `felix serve` flags).
func (n needs) declared() [][2]string {
	var d [][2]string
	for _, group := range []struct {
		kind string
		keys []string
	}{{"stream", n.streams}, {"durable-stream", n.durableStreams}, {"cache", n.caches}} {
		for _, k := range group.keys {
			d = append(d, [2]string{group.kind, k})
		}
	}
	return d
}

// serveCommand is the `felix serve` command line that declares n.
func (n needs) serveCommand() string {
	args := []string{"felix serve"}
	for _, d := range n.declared() {
		args = append(args, "--"+d[0]+" "+d[1])
	}
	return strings.Join(append(args, n.serveFlags...), " ")
}

// brokerConn is the broker a demo talks to.
type brokerConn struct {
	addr     string
	tls      *tls.Config
	token    string
	embedded *embed.Broker // nil for an external broker
}

// startBroker starts the embedded broker with n declared (or names the
// external one) and prints the first step.
func (e *env) startBroker(n needs) error {
	if e.opts.Addr != "" {
		e.b = &brokerConn{addr: e.opts.Addr, tls: e.opts.TLS, token: e.opts.Token}
		e.stepf("Using the external broker at %s.", e.opts.Addr)
		e.notef("It must declare what this demo uses, e.g.: %s", n.serveCommand())
		return nil
	}
	b, err := embed.Start(embed.Options{
		Streams: n.streams, DurableStreams: n.durableStreams, Caches: n.caches,
		Broker: n.broker, Queues: n.queues, Logger: e.opts.Logger,
	})
	if err != nil {
		return fmt.Errorf("start embedded broker: %w", err)
	}
	e.b = &brokerConn{addr: b.Addr, tls: b.ClientTLS, embedded: b}
	e.stepf("Started a Felix broker in this process, listening on %s (QUIC, TLS 1.3, development certificate).", b.Addr)
	var decl []string
	for _, d := range n.declared() {
		decl = append(decl, strings.ReplaceAll(d[0], "-", " ")+" "+d[1])
	}
	if len(decl) > 0 {
		e.notef("Declared: %s.", strings.Join(decl, ", "))
	}
	return nil
}

// dial connects a client as tenant; o may set extra client options (its
// TLS, Token and TenantID are filled in).
func (e *env) dial(ctx context.Context, tenant string, o client.Options) (*client.Client, error) {
	o.TenantID, o.TLS, o.Token = tenant, e.b.tls, e.b.token
	c, err := client.Dial(ctx, e.b.addr, o)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as tenant %s: %w", e.b.addr, tenant, err)
	}
	return c, nil
}

func (b *brokerConn) close() error {
	if b.embedded == nil {
		return nil
	}
	return b.embedded.Close()
}
