package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// After RefuseNew, each dial fails at once with the listener's
// CONNECTION_REFUSED and is reported once (a ClientHello's Initial
// packets count as one dial), while a connection accepted before goes on
// working.
func TestRefuseNew(t *testing.T) {
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := startEchoOn(t, "127.0.0.1:0", conf, Options{})
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, err := Dial(ctx, addr, insecureClient(), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	var mu sync.Mutex
	var refused []string
	ln.RefuseNew(func(remote net.Addr) {
		mu.Lock()
		refused = append(refused, remote.String())
		mu.Unlock()
	})
	const dials = 3
	var locals []string
	for i := range dials {
		c, err := Dial(ctx, addr, insecureClient(), Options{}, nil)
		if err == nil {
			c.Close()
			t.Fatalf("dial %d after RefuseNew connected", i)
		}
		var te *quic.TransportError
		if !errors.As(err, &te) || !te.Remote || te.ErrorCode != quic.ConnectionRefused {
			t.Fatalf("dial %d: %v, want the listener's CONNECTION_REFUSED", i, err)
		}
	}
	mu.Lock()
	got := len(refused)
	locals = append(locals, refused...)
	mu.Unlock()
	if got != dials {
		t.Fatalf("%d refusals reported (%v), want one per dial: %d", got, locals, dials)
	}

	// The connection accepted before still echoes.
	str, err := before.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(str, b[:]); err != nil || b[0] != 7 {
		t.Fatalf("echo on the connection accepted before: %v %v", b, err)
	}
}
