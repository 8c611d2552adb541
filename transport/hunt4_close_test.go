package transport

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// Close while several goroutines accept and clients keep dialing: every
// Accept returns an error wrapping net.ErrClosed, Close returns nil (also
// when called concurrently), and nothing races.
func TestHunt4CloseRacingAccepts(t *testing.T) {
	ln := devListener(t, "127.0.0.1:0", Options{})
	addr := ln.Addr().String()

	const acceptors = 4
	acceptErrs := make(chan error, acceptors)
	firstConn := make(chan struct{})
	var once sync.Once
	for range acceptors {
		go func() {
			for {
				conn, err := ln.Accept(context.Background())
				if err != nil {
					acceptErrs <- err
					return
				}
				once.Do(func() { close(firstConn) })
				_ = conn.CloseWithError(0, "")
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var dialers sync.WaitGroup
	for range 3 {
		dialers.Go(func() {
			for ctx.Err() == nil {
				dctx, dcancel := context.WithTimeout(ctx, time.Second)
				if c, err := Dial(dctx, addr, insecureClient(), Options{}, nil); err == nil {
					_ = c.Close()
				}
				dcancel()
			}
		})
	}
	<-firstConn // connections are being accepted

	closeErrs := make(chan error, 3)
	for range 3 {
		go func() { closeErrs <- ln.Close() }()
	}
	for range 3 {
		if err := <-closeErrs; err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	for range acceptors {
		if err := <-acceptErrs; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	}
	cancel()
	dialers.Wait()
}

// Dial on a ClientTransport that was closed fails at once with an error
// (it neither hangs until the context ends nor panics), also when racing
// the Close.
func TestHunt4DialAfterClientTransportClose(t *testing.T) {
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, conf).Addr().String()
	tr, err := NewClientTransport(Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if c, err := tr.Dial(ctx, addr, insecureClient()); err == nil {
				_ = c.CloseWithError(0, "")
			}
		})
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := tr.Dial(ctx, addr, insecureClient())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Dial on a closed ClientTransport succeeded")
		}
	case <-time.After(10 * time.Second): // a bound for a hang, not a timing assertion
		t.Fatal("Dial on a closed ClientTransport hangs")
	}
}

// A connection whose handshake completed but that no Accept took is told
// when the listener closes: CloseWithError closes it with the code and
// reason given, so its client learns at once (before, quic-go's transport
// close destroyed it silently and the client waited out its idle
// timeout). Close does the same with code 0. Three connections are dialed
// one after the other, so the first one's handshake has long finished on
// the listener's side (the later ones' take round trips after it); the
// last may still be handshaking there, and is refused.
func TestCloseWithErrorTellsQueuedConnections(t *testing.T) {
	for _, withErr := range []bool{true, false} {
		ln := devListener(t, "127.0.0.1:0", Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var conns []*ClientConn
		for range 3 {
			c, err := Dial(ctx, ln.Addr().String(), insecureClient(), Options{MaxIdleTimeout: time.Minute}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		wantCode, wantMsg := quic.ApplicationErrorCode(0), "listener closed"
		var err error
		if withErr {
			wantCode, wantMsg = 7, "broker shutting down"
			err = ln.CloseWithError(wantCode, wantMsg)
		} else {
			err = ln.Close()
		}
		if err != nil {
			t.Fatalf("close: %v", err)
		}
		for i, c := range conns {
			select {
			case <-c.Conn.Context().Done():
			case <-ctx.Done():
				t.Fatalf("connection %d was not told the listener closed (withErr %v)", i, withErr)
			}
			cause := context.Cause(c.Conn.Context())
			var ae *quic.ApplicationError
			var te *quic.TransportError
			switch {
			case errors.As(cause, &ae) && ae.Remote && ae.ErrorCode == wantCode && ae.ErrorMessage == wantMsg:
			case i > 0 && errors.As(cause, &te) && te.Remote && te.ErrorCode == quic.ConnectionRefused:
			default:
				t.Fatalf("connection %d ended with %v, want the listener's close %d %q", i, cause, wantCode, wantMsg)
			}
		}
		cancel()
	}
}
