package bench

import (
	"context"
	"crypto/tls"
	"errors"

	"github.com/felixmq/felix/client"
)

// FelixRequestMaxInFlight is the bound of requests the Felix responder
// runs at once (client.WithMaxInFlight), the broker's cap.
const FelixRequestMaxInFlight = 64

// FelixRequestTarget is Felix request/reply as a RequestTarget, driven by
// the Go SDK: a responder client running client.Serve with an echo handler
// (WithMaxInFlight(64)), and one requester client whose Request calls,
// from every requester goroutine, are pipelined on its one request stream.
type FelixRequestTarget struct {
	Addr      string
	TLS       *tls.Config
	Namespace string // default "default"
	Service   string // default "benchecho"

	req, resp *client.Client
	svc       *client.Service
}

// Name implements RequestTarget.
func (t *FelixRequestTarget) Name() string { return "felix" }

// Describe implements RequestTarget.
func (t *FelixRequestTarget) Describe() string {
	return "requesters share one client (Client.Request, pipelined on one QUIC stream); one responder client, Client.Serve with an echo handler, WithMaxInFlight(64)"
}

func (t *FelixRequestTarget) names() (string, string) {
	ns, svc := t.Namespace, t.Service
	if ns == "" {
		ns = "default"
	}
	if svc == "" {
		svc = "benchecho"
	}
	return ns, svc
}

func (t *FelixRequestTarget) dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, t.Addr, client.Options{TLS: t.TLS, Reconnect: client.ReconnectPolicy{Disabled: true},
		PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1, CacheConns: 1, CacheStreamsPerConn: 1})
}

// Setup implements RequestTarget.
func (t *FelixRequestTarget) Setup(ctx context.Context, _ int) error {
	if t.req != nil || t.resp != nil {
		return errors.New("felix request target is already set up")
	}
	var err error
	if t.resp, err = t.dial(ctx); err != nil {
		return err
	}
	ns, name := t.names()
	echo := func(_ context.Context, req []byte) ([]byte, error) { return req, nil }
	// The service lives until Close, not just until Setup's ctx ends.
	if t.svc, err = t.resp.Serve(context.WithoutCancel(ctx), ns, name, echo, client.WithMaxInFlight(FelixRequestMaxInFlight)); err != nil {
		return err
	}
	t.req, err = t.dial(ctx)
	return err
}

// Request implements RequestTarget.
func (t *FelixRequestTarget) Request(ctx context.Context, payload []byte) ([]byte, error) {
	ns, name := t.names()
	return t.req.Request(ctx, ns, name, payload)
}

// Close implements RequestTarget.
func (t *FelixRequestTarget) Close() error {
	var errs []error
	if t.req != nil {
		errs = append(errs, t.req.Close())
	}
	if t.svc != nil {
		errs = append(errs, t.svc.Close())
	}
	if t.resp != nil {
		errs = append(errs, t.resp.Close())
	}
	t.req, t.svc, t.resp = nil, nil, nil
	return errors.Join(errs...)
}
