package client

import (
	"context"
	"sync"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
)

// startFakeBroker listens on 127.0.0.1 with a throw-away certificate and
// transport options opts, and calls stream in a goroutine of its own for
// every bidirectional stream a client opens, until the test ends. It
// returns the address to dial.
func startFakeBroker(tb testing.TB, opts transport.Options, stream func(ctx context.Context, qc *quic.Conn, str *quic.Stream)) string {
	tb.Helper()
	tlsConf, err := transport.ServerTLSConfig(transport.TLSOptions{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := transport.Listen("127.0.0.1:0", tlsConf, opts, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.Cleanup(func() { cancel(); _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			qc, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					str, err := qc.AcceptStream(ctx)
					if err != nil {
						return
					}
					go stream(ctx, qc, str)
				}
			})
		}
	})
	return ln.Addr().String()
}
