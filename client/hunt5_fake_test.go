package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// subCall is one subscribe the scripted broker received: n counts them
// from 1.
type subCall struct {
	ctx context.Context
	n   int
	req *wire.Subscribe
	qc  *quic.Conn
	str *quic.Stream
}

// reply answers the subscribe with m.
func (sc subCall) reply(t testing.TB, m wire.Message) {
	b, err := wire.AppendMessageFrame(nil, m)
	if err != nil {
		t.Error(err)
		return
	}
	_, _ = sc.str.Write(b)
}

// events opens an event stream on the subscribe's connection and writes
// the hello for id followed by frames.
func (sc subCall) events(t testing.TB, id uint64, frames ...[]byte) *quic.SendStream {
	us, err := sc.qc.OpenUniStreamSync(sc.ctx)
	if err != nil {
		return nil
	}
	hello, err := wire.AppendMessageFrame(nil, &wire.EventStreamHello{SubscriptionID: id})
	if err != nil {
		t.Error(err)
	}
	for _, f := range frames {
		hello = append(hello, f...)
	}
	_, _ = us.Write(hello)
	return us
}

// start returns the start position the subscribe asked for.
func (sc subCall) start() wire.StartPosition {
	if sc.req.Start == nil {
		return wire.StartPosition{Kind: wire.StartLatest}
	}
	return *sc.req.Start
}

// startScriptBroker runs a fake broker granting every capability, which
// answers auth on each stream and hands every subscribe to script, in
// order of arrival, on the stream's own goroutine. Other requests are left
// unanswered. It returns a client connected to it with one event
// connection; opts may set reconnection.
func startScriptBroker(t *testing.T, opts Options, script func(sc subCall)) *Client {
	t.Helper()
	var mu sync.Mutex
	n := 0
	authOK := authOKFrame(t)
	addr := startFakeBroker(t, transport.Options{}, func(ctx context.Context, qc *quic.Conn, str *quic.Stream) {
		defer str.CancelRead(0)
		r := wire.NewReader(str, 1<<20)
		r.AllowFlags(wire.FlagBinaryCache)
		if _, err := r.ReadFrame(); err != nil { // auth
			return
		}
		if _, err := str.Write(authOK); err != nil {
			return
		}
		f, err := r.ReadFrame()
		if err != nil || f.Flags != 0 {
			<-ctx.Done()
			return
		}
		m, _ := wire.DecodeMessage(f.Payload)
		req, isSub := m.(*wire.Subscribe)
		if !isSub {
			<-ctx.Done()
			return
		}
		mu.Lock()
		n++
		call := subCall{ctx: ctx, n: n, req: req, qc: qc, str: str}
		mu.Unlock()
		script(call)
		_ = str.Close()
	})
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS = tlsConf
	opts.PublishConns, opts.PublishStreamsPerConn, opts.EventConns, opts.CacheConns = 1, 1, 1, 1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// offsetEvents is a shared event frame with offsets base, base+1, ...
func offsetEvents(base uint64, payloads ...string) []byte {
	return wire.AppendEventBatchFrame(nil, true, base, asBytes(payloads))
}

// plainEvents is a shared event frame without offsets.
func plainEvents(payloads ...string) []byte {
	return wire.AppendEventBatchFrame(nil, false, 0, asBytes(payloads))
}

// startResumeBroker runs a script broker whose first subscription gets
// the frames first and then the end of its event stream, so the SDK
// resubscribes; later ones get an idle stream. Every subscribe's start
// is sent on the returned channel.
func startResumeBroker(t *testing.T, first []byte) (*Client, <-chan wire.StartPosition) {
	starts := make(chan wire.StartPosition, 4)
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		starts <- sc.start()
		us := sc.events(t, uint64(sc.n))
		sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		if sc.n == 1 && us != nil {
			_, _ = us.Write(first)
			_ = us.Close()
		}
	})
	return c, starts
}
