package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// postHandshakeCryptoError is how quic-go closes a connection whose peer
// sent a TLS message crypto/tls refuses after the handshake (a CRYPTO frame
// in a 1-RTT packet with a KeyUpdate or NewSessionTicket message, say):
// a local CRYPTO_ERROR with the alert, as for a refused handshake.
func postHandshakeCryptoError() error {
	return &quic.TransportError{ErrorCode: quic.TransportErrorCode(0x100 + 10), // unexpected_message
		ErrorMessage: "tls: received unexpected key update message"}
}

// A connection the listener accepted (its handshake completed) that later
// ends with a local CRYPTO_ERROR is not a refused handshake: it is neither
// counted nor logged as one. One that never got that far still is.
func TestHunt7PostHandshakeCryptoErrorNotAHandshakeFailure(t *testing.T) {
	log, logs := jsonLogger()
	h, wait := watchedFailures(t)
	connCtx := h.connContext(log)
	remote := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4433}

	// Established: the listener accepted it, then it failed.
	parent, cancel := context.WithCancelCause(context.Background())
	ctx, err := connCtx(parent, &quic.ClientInfo{RemoteAddr: remote})
	if err != nil {
		t.Fatal(err)
	}
	markAccepted(ctx)
	cancel(postHandshakeCryptoError())
	wait(1)
	if n := h.Counts().Total(); n != 0 {
		t.Errorf("an accepted connection's later crypto error counted as %d handshake failures", n)
	}
	if l := failureLines(t, logs); len(l) != 0 {
		t.Errorf("an accepted connection's later crypto error logged as a handshake failure: %v", l)
	}

	// Still in its handshake: counted and logged.
	parent, cancel = context.WithCancelCause(context.Background())
	if _, err := connCtx(parent, &quic.ClientInfo{RemoteAddr: remote}); err != nil {
		t.Fatal(err)
	}
	cancel(postHandshakeCryptoError())
	wait(1)
	if n := h.Counts()[HandshakeOther]; n != 1 {
		t.Errorf("a handshake's crypto error counted %d, want 1 (other)", n)
	}
	if l := failureLines(t, logs); len(l) != 1 {
		t.Errorf("a handshake's crypto error logged %d times, want once", len(l))
	}
}

// The listener marks the connections it accepts (see markAccepted), and
// a connection it accepted that the client then closes counts nothing.
func TestHunt7ListenerMarksAcceptedConnections(t *testing.T) {
	dir := t.TempDir()
	conf, _, err := NewServerTLS(TLSOptions{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := jsonLogger()
	h, wait := watchedFailures(t)
	ln, err := Listen("127.0.0.1:0", conf, Options{HandshakeFailures: h}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := Dial(ctx, ln.Addr().String(), clientWith(t, dir, "", ""), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	qc, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := qc.Context().Value(connStateKey{}).(*connState)
	if !ok || !st.accepted.Load() {
		t.Fatal("the accepted connection is not marked accepted")
	}
	cc.Close()
	<-qc.Context().Done()
	wait(1)
	if n := h.Counts().Total(); n != 0 {
		t.Errorf("counted %d", n)
	}
	if l := failureLines(t, logs); len(l) != 0 {
		t.Errorf("logged %v", l)
	}
}
