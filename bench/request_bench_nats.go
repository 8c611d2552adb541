package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go"
)

// NATSRequestTarget is NATS core request/reply as a RequestTarget: a
// responder connection with one queue subscriber (group "q") answering
// every request with m.Respond(m.Data), and one requester connection
// whose nc.Request calls (RequestWithContext, nats.go's shared response
// inbox), from every requester goroutine, share it. Each Setup uses a
// fresh subject.
type NATSRequestTarget struct {
	// URL of the server. Default DefaultNATSURL.
	URL string

	req, resp *nats.Conn
	subject   string
}

// Name implements RequestTarget.
func (t *NATSRequestTarget) Name() string { return "nats" }

// Describe implements RequestTarget.
func (t *NATSRequestTarget) Describe() string {
	return "requesters share one connection (nc.RequestWithContext, one shared response inbox); one responder connection, QueueSubscribe group q, m.Respond(m.Data)"
}

func (t *NATSRequestTarget) connect(name string) (*nats.Conn, error) {
	url := t.URL
	if url == "" {
		url = DefaultNATSURL
	}
	return nats.Connect(url, nats.Name(name), nats.NoReconnect())
}

// Setup implements RequestTarget.
func (t *NATSRequestTarget) Setup(ctx context.Context, _ int) error {
	if t.req != nil || t.resp != nil {
		return errors.New("nats request target is already set up")
	}
	var id [6]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	t.subject = "felixbench.request." + hex.EncodeToString(id[:])
	var err error
	if t.resp, err = t.connect("felix-bench-responder"); err != nil {
		return err
	}
	sub, err := t.resp.QueueSubscribe(t.subject, "q", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return err
	}
	// Requests may come in as fast as they are answered: no slow-consumer
	// drops at the responder.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	// The subscription is at the server once a PING/PONG came back after it.
	if err := flushNATS(ctx, t.resp); err != nil {
		return err
	}
	t.req, err = t.connect("felix-bench-requester")
	return err
}

// Request implements RequestTarget.
func (t *NATSRequestTarget) Request(ctx context.Context, payload []byte) ([]byte, error) {
	m, err := t.req.RequestWithContext(ctx, t.subject, payload)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// Close implements RequestTarget.
func (t *NATSRequestTarget) Close() error {
	for _, nc := range []*nats.Conn{t.req, t.resp} {
		if nc != nil {
			nc.Close()
		}
	}
	t.req, t.resp = nil, nil
	return nil
}
