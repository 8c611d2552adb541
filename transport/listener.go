package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// Listener accepts QUIC connections on a UDP socket it owns.
type Listener struct {
	ln   *quic.Listener
	tr   *quic.Transport
	udp  *net.UDPConn
	once sync.Once
	err  error
}

// Listen opens a UDP socket on addr (host:port; port 0 picks one), sizes its
// buffers (see the package doc) and listens for QUIC connections with
// tlsConf and opts. A tlsConf without NextProtos or GetConfigForClient gets
// the ALPN echo hook (EchoALPN). A nil log discards. TLS handshakes that
// fail on the listener's side are logged and counted (see
// HandshakeFailures).
func Listen(addr string, tlsConf *tls.Config, opts Options, log *slog.Logger) (*Listener, error) {
	if tlsConf == nil {
		return nil, errors.New("transport: listen: nil tls config")
	}
	log = orDiscard(log)
	udp, err := listenUDP(addr, opts, log, "broker")
	if err != nil {
		return nil, err
	}
	failures := opts.HandshakeFailures
	if failures == nil {
		failures = new(HandshakeFailures) // logged all the same
	}
	tr := &quic.Transport{Conn: udp, StatelessResetKey: opts.StatelessResetKey,
		ConnContext: failures.connContext(log)}
	ln, err := tr.Listen(EchoALPN(tlsConf), opts.QUICConfig())
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, err
	}
	return &Listener{ln: ln, tr: tr, udp: udp}, nil
}

// Accept waits for the next connection (its handshake completed). After
// Close it returns an error wrapping net.ErrClosed.
func (l *Listener) Accept(ctx context.Context) (*quic.Conn, error) {
	qc, err := l.ln.Accept(ctx)
	if err == nil {
		markAccepted(qc.Context()) // a later TLS error is no refused handshake
	}
	return qc, err
}

// Addr is the local UDP address (with the port chosen for port 0).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Transport is the underlying quic-go transport, e.g. for dialing out from
// the same socket.
func (l *Listener) Transport() *quic.Transport { return l.tr }

// Close is CloseWithError(0, "listener closed").
func (l *Listener) Close() error { return l.CloseWithError(0, "listener closed") }

// CloseWithError stops accepting and closes, with an application close of
// code and msg, the connections the listener holds but no Accept took:
// those that finished their handshake meanwhile. Handshakes still under
// way are refused (CONNECTION_REFUSED) and waited for. Then it closes the
// quic-go transport, which drops the accepted connections still open
// without telling their peers (close them first), and the UDP socket. So
// a client dialing while a server stops is told, and never waits out an
// idle timeout on a connection nobody serves. It is safe to call more
// than once; only the first call acts.
func (l *Listener) CloseWithError(code quic.ApplicationErrorCode, msg string) error {
	l.once.Do(func() {
		err := l.ln.Close() // returns once no handshake is in flight
		for {
			// After Close, Accept hands out what is queued, then fails
			// at once: this loop ends.
			qc, aerr := l.ln.Accept(context.Background())
			if aerr != nil {
				break
			}
			qc.CloseWithError(code, msg)
		}
		l.err = errors.Join(err, l.tr.Close(), l.udp.Close())
	})
	return l.err
}
