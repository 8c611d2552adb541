package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// ClientTransport is a client UDP socket from which any number of QUIC
// connections are dialed (a connection pool shares one).
type ClientTransport struct {
	tr   *quic.Transport
	udp  *net.UDPConn
	conf *quic.Config
	once sync.Once
	err  error
}

// NewClientTransport opens an unbound-port UDP socket, sizes its buffers
// (see the package doc) and prepares it for dialing with opts. A nil log
// discards.
func NewClientTransport(opts Options, log *slog.Logger) (*ClientTransport, error) {
	udp, err := listenUDP(":0", opts, orDiscard(log), "client")
	if err != nil {
		return nil, err
	}
	return &ClientTransport{
		tr:   &quic.Transport{Conn: udp},
		udp:  udp,
		conf: opts.QUICConfig(),
	}, nil
}

// Dial opens a QUIC connection to addr (host:port) and completes the
// handshake, honouring ctx.
func (t *ClientTransport) Dial(ctx context.Context, addr string, tlsConf *tls.Config) (*quic.Conn, error) {
	return t.DialIdle(ctx, addr, tlsConf, 0)
}

// DialIdle is Dial with its own idle timeout when idle > 0: the connection
// closes after idle without any packet from the peer (QUIC takes the
// smaller of both sides' timeouts), and it sends a keep-alive every third
// of idle so that a live peer always answers in time. For connections
// that only receive, it bounds how long a peer that died without a word
// (a killed process, a lost host) goes unnoticed.
func (t *ClientTransport) DialIdle(ctx context.Context, addr string, tlsConf *tls.Config, idle time.Duration) (*quic.Conn, error) {
	if tlsConf == nil {
		return nil, errors.New("transport: dial: nil tls config")
	}
	raddr, err := resolveUDP(ctx, addr)
	if err != nil {
		return nil, err
	}
	conf := t.conf.Clone()
	if idle > 0 {
		conf.MaxIdleTimeout, conf.KeepAlivePeriod = idle, idle/3
	}
	conn, err := t.tr.Dial(ctx, raddr, tlsConf, conf)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	return conn, nil
}

// LocalAddr is the client socket's address.
func (t *ClientTransport) LocalAddr() net.Addr { return t.udp.LocalAddr() }

// Close closes the quic-go transport (dropping the connections still open,
// see the package doc) and the UDP socket. It is safe to call more than once.
func (t *ClientTransport) Close() error {
	t.once.Do(func() { t.err = errors.Join(t.tr.Close(), t.udp.Close()) })
	return t.err
}

// ClientConn is a QUIC connection that owns its own ClientTransport.
type ClientConn struct {
	*quic.Conn
	tr *ClientTransport
}

// Dial opens a dedicated UDP socket and one QUIC connection to addr. Close
// the result with ClientConn.Close, which closes the connection and the
// socket. To dial many connections from one socket use NewClientTransport.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, opts Options, log *slog.Logger) (*ClientConn, error) {
	tr, err := NewClientTransport(opts, log)
	if err != nil {
		return nil, err
	}
	conn, err := tr.Dial(ctx, addr, tlsConf)
	if err != nil {
		_ = tr.Close()
		return nil, err
	}
	return &ClientConn{Conn: conn, tr: tr}, nil
}

// Close closes the connection with application error code 0 and then the
// socket.
func (c *ClientConn) Close() error {
	err := c.CloseWithError(0, "")
	return errors.Join(err, c.tr.Close())
}

// resolveUDP resolves host:port, honouring ctx for name lookups.
func resolveUDP(ctx context.Context, addr string) (*net.UDPAddr, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("transport: address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		p, lerr := net.DefaultResolver.LookupPort(ctx, "udp", portStr)
		if lerr != nil {
			return nil, fmt.Errorf("transport: address %q: bad port: %w", addr, lerr)
		}
		port = uint64(p)
	}
	if host == "" {
		host = "localhost"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("transport: resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("transport: resolve %s: no addresses", host)
	}
	ip := ips[0]
	for _, c := range ips { // prefer IPv4, as loopback brokers usually bind it
		if c.Is4() || c.Is4In6() {
			ip = c.Unmap()
			break
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}
