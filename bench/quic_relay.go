package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/transport"
)

// The relay protocol (ALPN quicRelayALPN). A client opens a bidirectional
// stream and sends one byte naming its role:
//
//   - relaySubscribe: the server registers the stream, answers relayReady
//     on it, then writes everything it relays to it until the client
//     closes or resets the stream.
//   - relayPublish: the client then sends messages framed as in the echo
//     (a 4-byte big-endian length and that many bytes). The server forwards
//     them, framed the same, to every registered subscriber stream,
//     coalescing the messages it has already read into one write per
//     subscriber, as a broker's fanout does.
//
// Subscribers are served in registration order with the same primitive as
// Felix's direct fanout path (transport.TryWrite, else a blocking Write):
// the relay is what a QUIC fanout costs with nothing else in the way.
const (
	quicRelayALPN   = "felix-bench-relay"
	relaySubscribe  = 'S'
	relayPublish    = 'P'
	relayReady      = 'K'
	relayMaxCoalesc = 64 << 10 // bytes forwarded per write at most (one message may exceed it)
)

// quicRelay is the server side: the registered subscriber streams.
type quicRelay struct {
	mu   sync.Mutex                     // serialises changes to subs
	subs atomic.Pointer[[]*quic.Stream] // copy on write; read by the forwarders
}

func newQUICRelay() *quicRelay {
	r := &quicRelay{}
	r.subs.Store(&[]*quic.Stream{})
	return r
}

func (r *quicRelay) add(s *quic.Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := append(slices.Clone(*r.subs.Load()), s)
	r.subs.Store(&next)
}

func (r *quicRelay) remove(s *quic.Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(*r.subs.Load()), func(x *quic.Stream) bool { return x == s })
	r.subs.Store(&next)
}

// serveStream reads the role byte and serves the stream in that role.
func (r *quicRelay) serveStream(str *quic.Stream) {
	var role [1]byte
	if _, err := io.ReadFull(str, role[:]); err != nil {
		str.CancelWrite(1)
		return
	}
	switch role[0] {
	case relaySubscribe:
		r.add(str)
		defer r.remove(str)
		if _, err := str.Write([]byte{relayReady}); err != nil {
			return
		}
		// Nothing more is read: wait for the client to end the stream.
		_, _ = io.Copy(io.Discard, str)
		str.CancelWrite(0)
	case relayPublish:
		r.forward(str)
	default:
		str.CancelRead(1)
		str.CancelWrite(1)
	}
}

// forward relays a publisher's messages until its stream ends or breaks
// the framing.
func (r *quicRelay) forward(str *quic.Stream) {
	defer str.Close()
	rd := bufio.NewReaderSize(str, 64<<10)
	var out []byte
	for {
		var err error
		if out, err = appendFrame(rd, out); err != nil {
			if errors.Is(err, errFrameTooLong) {
				str.CancelRead(1)
			}
			return
		}
		if rd.Buffered() > 0 && len(out) < relayMaxCoalesc {
			continue // more is already here: send it in the same write
		}
		for _, s := range *r.subs.Load() {
			if !transport.TryWrite(s, out) {
				_, _ = s.Write(out) // a gone subscriber fails; the others go on
			}
		}
		out = out[:0]
	}
}

// QUICRelayName labels the relay in reports.
const QUICRelayName = "quic-go relay"

// QUICRelayTarget runs the relay of a peer started by StartQUICPeer as a
// PubSubTarget: one publishing connection, and one connection per
// subscriber (or one shared by all, SharedConn), each subscriber on its own
// stream. Its latency is one way, publisher to subscriber through a relay,
// like a broker's, so it is the floor for Felix's fanout over quic-go.
type QUICRelayTarget struct {
	Addr       string
	SharedConn bool

	framedPublisher
	pub   *quic.Conn
	conns []*quic.Conn
	wg    sync.WaitGroup // subscriber readers
}

// Name implements PubSubTarget.
func (t *QUICRelayTarget) Name() string {
	if t.SharedConn {
		return QUICRelayName + "-shared"
	}
	return QUICRelayName
}

func (t *QUICRelayTarget) dial(ctx context.Context) (*quic.Conn, error) {
	// As for the echo: our own peer on loopback with a throw-away
	// certificate; the handshake is not measured.
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{quicRelayALPN}, MinVersion: tls.VersionTLS13}
	conn, err := quic.DialAddr(ctx, t.Addr, tlsConf, &quic.Config{MaxIdleTimeout: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("dial quic relay %s: %w", t.Addr, err)
	}
	t.conns = append(t.conns, conn)
	return conn, nil
}

// Setup implements PubSubTarget: it returns once the relay has registered
// every subscriber.
func (t *QUICRelayTarget) Setup(ctx context.Context, subscribers int, deliver func(sub int, payload []byte)) (err error) {
	if t.pub != nil {
		return errors.New("quic relay target is already set up")
	}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	var conn *quic.Conn
	for i := range subscribers {
		if conn == nil || !t.SharedConn {
			if conn, err = t.dial(ctx); err != nil {
				return err
			}
		}
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return fmt.Errorf("open relay subscriber stream: %w", err)
		}
		if _, err := str.Write([]byte{relaySubscribe}); err != nil {
			return fmt.Errorf("relay subscribe: %w", err)
		}
		stop := context.AfterFunc(ctx, func() { str.CancelRead(1) })
		var ready [1]byte
		_, err = io.ReadFull(str, ready[:])
		stop()
		if err != nil || ready[0] != relayReady {
			return fmt.Errorf("relay subscribe: no ready answer (%v)", err)
		}
		t.wg.Go(func() { readFramed(str, func(msg []byte) { deliver(i, msg) }) })
	}
	if t.pub, err = t.dial(ctx); err != nil {
		return err
	}
	if t.str, err = t.pub.OpenStreamSync(ctx); err != nil {
		return fmt.Errorf("open relay publish stream: %w", err)
	}
	_, err = t.str.Write([]byte{relayPublish})
	return err
}

// Close implements PubSubTarget.
func (t *QUICRelayTarget) Close() error {
	var errs []error
	for _, c := range t.conns {
		errs = append(errs, c.CloseWithError(0, "bench done"))
	}
	t.wg.Wait()
	t.pub, t.str, t.conns = nil, nil, nil
	return errors.Join(errs...)
}

// framedPublisher is the publishing side of the raw quic-go targets: Publish
// writes the batch, framed, in one stream write; Flush does nothing, since
// quic-go has no flush (its own loop sends what was written).
type framedPublisher struct {
	str  *quic.Stream
	wbuf []byte
}

// Publish implements PubSubTarget.
func (p *framedPublisher) Publish(_ context.Context, payloads [][]byte) error {
	p.wbuf = appendFramed(p.wbuf[:0], payloads)
	_, err := p.str.Write(p.wbuf)
	return err
}

// Flush implements PubSubTarget.
func (p *framedPublisher) Flush(context.Context) error { return nil }

// appendFramed appends payloads to b, each framed as a 4-byte big-endian
// length and the bytes (the echo's and the relay's framing).
func appendFramed(b []byte, payloads [][]byte) []byte {
	for _, p := range payloads {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// errFrameTooLong: a framed message longer than quicEchoMaxMsg.
var errFrameTooLong = errors.New("bench: framed message longer than the quic peer allows")

// appendFrame reads one framed message from br and appends it to dst,
// header included.
func appendFrame(br *bufio.Reader, dst []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return dst, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > quicEchoMaxMsg {
		return dst, errFrameTooLong
	}
	dst = append(dst, hdr[:]...)
	start := len(dst)
	dst = slices.Grow(dst, int(n))[:start+int(n)]
	_, err := io.ReadFull(br, dst[start:])
	return dst, err
}

// readFramed calls deliver with every framed message read from r until r
// ends or breaks the framing. msg is reused.
func readFramed(r io.Reader, deliver func(msg []byte)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for {
		var err error
		if buf, err = appendFrame(br, buf[:0]); err != nil {
			return
		}
		deliver(buf[4:])
	}
}
