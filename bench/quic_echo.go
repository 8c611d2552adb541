package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// The echo protocol: on any bidirectional stream the client sends messages
// framed as a 4-byte big-endian length and that many bytes; the server sends
// each message back, framed the same way, in one write.
const (
	quicPeerMaxStreams = 1 << 14 // concurrent streams per connection
	quicEchoALPN       = "felix-bench-echo"
	quicEchoMaxMsg     = 16 << 20 // bytes; a longer frame resets the stream
)

// StartQUICPeer starts the raw quic-go peer on listen (a 127.0.0.1 address;
// port 0 picks a free one) with a self-signed in-memory certificate. It
// speaks two protocols, chosen by ALPN: the echo (QUICEchoTarget), the
// floor for any QUIC request/response, and the relay (QUICRelayTarget), the
// floor for a QUIC fanout broker. Neither has a broker, a codec or
// authentication: just quic-go. The server runs until stop is called or
// ctx is done; stop waits for its goroutines.
func StartQUICPeer(ctx context.Context, listen string) (addr string, stop func(), err error) {
	cert, err := selfSignedCert()
	if err != nil {
		return "", nil, fmt.Errorf("bench: quic peer: %w", err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{quicEchoALPN, quicRelayALPN}, MinVersion: tls.VersionTLS13}
	// A relay subscriber is a stream: allow as many on one connection as a
	// shared-connection fanout may open (quic-go's default is 100).
	ln, err := quic.ListenAddr(listen, tlsConf, &quic.Config{MaxIdleTimeout: time.Minute, MaxIncomingStreams: quicPeerMaxStreams})
	if err != nil {
		return "", nil, fmt.Errorf("bench: quic peer listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	relay := newQUICRelay()
	var wg sync.WaitGroup
	wg.Go(func() {
		<-ctx.Done()
		_ = ln.Close()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			if conn.ConnectionState().TLS.NegotiatedProtocol == quicRelayALPN {
				wg.Go(func() { serveStreams(ctx, conn, relay.serveStream) })
			} else {
				wg.Go(func() { serveStreams(ctx, conn, echoStream) })
			}
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	return ln.Addr().String(), stop, nil
}

// serveStreams runs serve for every stream of conn, each in its own
// goroutine, until conn or ctx ends; it returns once they all have.
func serveStreams(ctx context.Context, conn *quic.Conn, serve func(*quic.Stream)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer context.AfterFunc(ctx, func() { _ = conn.CloseWithError(0, "quic peer stopping") })()
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { serve(str) })
	}
}

// echoStream copies framed messages back until the stream ends or breaks
// the framing.
func echoStream(str *quic.Stream) {
	defer str.Close()
	r := bufio.NewReaderSize(str, 64<<10)
	var buf []byte
	for {
		var err error
		if buf, err = appendFrame(r, buf[:0]); err != nil {
			if errors.Is(err, errFrameTooLong) {
				str.CancelRead(1)
				str.CancelWrite(1)
			}
			return
		}
		if _, err := str.Write(buf); err != nil {
			return
		}
	}
}

// QUICEchoTarget runs the echo as a PubSubTarget with exactly one
// subscriber: Publish writes framed payloads on one bidirectional stream and
// the echoes are the deliveries, so the measured "latency" is a round trip.
// Flush is a no-op: quic-go has no flush, writes are sent by its own loop.
type QUICEchoTarget struct {
	// Addr of a peer started by StartQUICPeer.
	Addr string

	framedPublisher
	conn *quic.Conn
	done chan struct{} // closed when the reader goroutine returns
}

// QUICEchoName labels the echo in reports.
const QUICEchoName = "quic-go echo RTT"

// Name implements PubSubTarget.
func (t *QUICEchoTarget) Name() string { return QUICEchoName }

// Setup implements PubSubTarget; subscribers must be 1.
func (t *QUICEchoTarget) Setup(ctx context.Context, subscribers int, deliver func(sub int, payload []byte)) error {
	if subscribers != 1 {
		return fmt.Errorf("quic echo has exactly one receiver, not %d (use Fanout 1)", subscribers)
	}
	if t.conn != nil {
		return errors.New("quic echo target is already set up")
	}
	// The bench client skips verification: the peer is our own echo on
	// loopback with a throw-away certificate, and the handshake is not
	// part of what is measured.
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{quicEchoALPN}, MinVersion: tls.VersionTLS13}
	conn, err := quic.DialAddr(ctx, t.Addr, tlsConf, &quic.Config{MaxIdleTimeout: time.Minute})
	if err != nil {
		return fmt.Errorf("dial quic echo %s: %w", t.Addr, err)
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		_ = conn.CloseWithError(0, "")
		return fmt.Errorf("open echo stream: %w", err)
	}
	t.conn, t.str, t.done = conn, str, make(chan struct{})
	go func() {
		defer close(t.done)
		readFramed(str, func(msg []byte) { deliver(0, msg) })
	}()
	return nil
}

// Close implements PubSubTarget.
func (t *QUICEchoTarget) Close() error {
	if t.conn == nil {
		return nil
	}
	_ = t.str.Close()
	err := t.conn.CloseWithError(0, "bench done")
	<-t.done
	t.conn, t.str = nil, nil
	return err
}

// RunQUICEcho measures request→echo round trips against the echo server at
// addr with RunPubSub's pacing and accounting (cfg.Fanout must be 0 or 1;
// PayloadSize defaults to 256 bytes). The result is labelled
// QUICEchoName: its Latency is a round trip, not a one-way delivery.
func RunQUICEcho(ctx context.Context, addr string, cfg PubSubConfig) (PubSubResult, error) {
	if cfg.Fanout > 1 {
		return PubSubResult{Target: QUICEchoName, Config: cfg}, fmt.Errorf("bench: quic echo: fanout %d, want 1", cfg.Fanout)
	}
	return RunPubSub(ctx, &QUICEchoTarget{Addr: addr}, cfg)
}

// selfSignedCert makes a throw-away ECDSA P-256 certificate for 127.0.0.1.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "felix bench peer"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// LoopbackCert makes a throw-away self-signed certificate for 127.0.0.1
// (a peer's TLS, such as NATSServerOptions.TLS) and a pool that trusts it,
// for the clients' tls.Config RootCAs.
func LoopbackCert() (tls.Certificate, *x509.CertPool, error) {
	cert, err := selfSignedCert()
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("bench: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("bench: parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return cert, pool, nil
}
