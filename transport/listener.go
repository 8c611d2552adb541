package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// Listener accepts QUIC connections on a UDP socket it owns.
type Listener struct {
	ln   *quic.Listener
	tr   *quic.Transport
	udp  *net.UDPConn
	once sync.Once
	err  error
	// refusing is set by RefuseNew.
	refusing atomic.Pointer[refusal]
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
	l := &Listener{udp: udp}
	connContext := failures.connContext(log)
	tr := &quic.Transport{Conn: udp, StatelessResetKey: opts.StatelessResetKey,
		ConnContext: func(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
			if r := l.refusing.Load(); r != nil {
				r.note(info.RemoteAddr)
				return nil, errRefusingNew // quic-go answers CONNECTION_REFUSED
			}
			return connContext(ctx, info)
		}}
	ln, err := tr.Listen(EchoALPN(tlsConf), opts.QUICConfig())
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, err
	}
	l.ln, l.tr = ln, tr
	return l, nil
}

// errRefusingNew is why a connection is refused after RefuseNew.
var errRefusingNew = errors.New("transport: refusing new connections")

// RefuseNew makes the listener refuse every new connection from now on:
// its first packet is answered with CONNECTION_REFUSED, so the client's
// dial fails at once (a *quic.TransportError with code
// quic.ConnectionRefused) and no handshake is done. refused, if not nil,
// is called once for each dial refused, with the client's address, from
// quic-go's packet handling (it must be quick): a ClientHello often takes
// two Initial packets, each refused, and a client whose refusal is lost
// retransmits them, so the packets refused from one address within
// refuseDedupWindow (5 s) of the first count as one dial (also a redial
// from the same socket meanwhile). Connections accepted before, and
// those whose handshake was under way, are not affected: Accept still
// returns the latter. A broker calls it as its drain begins, so that a
// client redialing meanwhile neither connects to a broker that is going
// away nor waits out a timeout. It cannot be undone; a later call
// replaces refused.
func (l *Listener) RefuseNew(refused func(remote net.Addr)) {
	if refused == nil {
		refused = func(net.Addr) {}
	}
	l.refusing.Store(newRefusal(refused, time.Now))
}

// refuseDedupWindow: the packets refused from one address within it,
// counted from the first, are one dial (see RefuseNew). A client whose
// refusal is lost retransmits its Initial packets until its handshake
// times out (quic-go: after about 300 ms, doubling, for 5 s), so the
// window is that timeout.
const refuseDedupWindow = 5 * time.Second

// refuseRecentMax bounds the addresses a refusal remembers.
const refuseRecentMax = 4096

// refusal is RefuseNew's state: the callback, and the addresses it was
// called for within refuseDedupWindow, oldest first. At most
// refuseRecentMax are remembered: beyond, the oldest is forgotten early,
// which at worst counts its dial twice.
type refusal struct {
	fn  func(remote net.Addr)
	now func() time.Time
	mu  sync.Mutex
	// counted is when fn was called for each address; order holds the
	// same addresses, oldest first.
	counted map[string]time.Time
	order   []string
}

// newRefusal calls fn once per dial refused, reading the time from now.
func newRefusal(fn func(remote net.Addr), now func() time.Time) *refusal {
	return &refusal{fn: fn, now: now, counted: map[string]time.Time{}}
}

// note calls fn for remote unless fn was called for remote within
// refuseDedupWindow.
func (r *refusal) note(remote net.Addr) {
	now, k := r.now(), remote.String()
	r.mu.Lock()
	r.forget(now)
	t, ok := r.counted[k]
	if ok && now.Sub(t) < refuseDedupWindow {
		r.mu.Unlock()
		return
	}
	if !ok { // else a clock stepped back kept it in order
		if len(r.order) >= refuseRecentMax {
			r.drop()
		}
		r.order = append(r.order, k)
	}
	r.counted[k] = now
	r.mu.Unlock()
	r.fn(remote)
}

// forget drops the addresses counted a window ago or more. Addresses are
// counted in time order, so those lead order.
func (r *refusal) forget(now time.Time) {
	for len(r.order) > 0 && now.Sub(r.counted[r.order[0]]) >= refuseDedupWindow {
		r.drop()
	}
}

// drop forgets the oldest address.
func (r *refusal) drop() {
	delete(r.counted, r.order[0])
	r.order[0] = ""
	r.order = r.order[1:]
}

// remembered is how many addresses r holds.
func (r *refusal) remembered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counted)
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
