package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// A client offering no ALPN (the reference, our client) and one offering
// protocols (common Go QUIC clients) both complete a handshake.
func TestALPNInterop(t *testing.T) {
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startEcho(t, conf).Addr().String()
	for _, tc := range []struct {
		name  string
		offer []string
		want  string
	}{
		{"none", nil, ""},
		{"felix,h3", []string{"felix", "h3"}, "felix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: tc.offer}
			if err := roundTrip(t, addr, client); err != nil {
				t.Fatalf("round trip: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := Dial(ctx, addr, client, Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().TLS.NegotiatedProtocol; got != tc.want {
				t.Errorf("negotiated %q, want %q", got, tc.want)
			}
		})
	}
}

func TestQUICConfigDefaults(t *testing.T) {
	c := Options{}.QUICConfig()
	if c.MaxIncomingStreams != 1024 || c.MaxIncomingUniStreams != 1024 {
		t.Errorf("streams %d/%d", c.MaxIncomingStreams, c.MaxIncomingUniStreams)
	}
	if c.InitialStreamReceiveWindow != 1<<20 || c.MaxStreamReceiveWindow != 16<<20 {
		t.Errorf("stream windows %d/%d", c.InitialStreamReceiveWindow, c.MaxStreamReceiveWindow)
	}
	if c.InitialConnectionReceiveWindow != 2<<20 || c.MaxConnectionReceiveWindow != 64<<20 {
		t.Errorf("connection windows %d/%d", c.InitialConnectionReceiveWindow, c.MaxConnectionReceiveWindow)
	}
	if c.MaxIdleTimeout != 30*time.Second || c.KeepAlivePeriod != 0 {
		t.Errorf("idle %v keep-alive %v", c.MaxIdleTimeout, c.KeepAlivePeriod)
	}
}

func TestQUICConfigApplied(t *testing.T) {
	c := Options{
		MaxIncomingStreams:             7,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     4 << 20,
		MaxStreamReceiveWindow:         2 << 20, // below the initial: raised
		InitialConnectionReceiveWindow: 8 << 20,
		MaxConnectionReceiveWindow:     256 << 20,
		MaxIdleTimeout:                 time.Minute,
		KeepAlivePeriod:                5 * time.Second,
	}.QUICConfig()
	if c.MaxIncomingStreams != 7 || c.MaxIncomingUniStreams != -1 {
		t.Errorf("streams %d/%d", c.MaxIncomingStreams, c.MaxIncomingUniStreams)
	}
	if c.InitialStreamReceiveWindow != 4<<20 || c.MaxStreamReceiveWindow != 4<<20 {
		t.Errorf("stream windows %d/%d", c.InitialStreamReceiveWindow, c.MaxStreamReceiveWindow)
	}
	if c.InitialConnectionReceiveWindow != 8<<20 || c.MaxConnectionReceiveWindow != 256<<20 {
		t.Errorf("connection windows %d/%d", c.InitialConnectionReceiveWindow, c.MaxConnectionReceiveWindow)
	}
	if c.MaxIdleTimeout != time.Minute || c.KeepAlivePeriod != 5*time.Second {
		t.Errorf("idle %v keep-alive %v", c.MaxIdleTimeout, c.KeepAlivePeriod)
	}
}

// The stream limit in Options reaches the peer: a client may open only
// MaxIncomingStreams streams at once.
func TestStreamLimitEnforced(t *testing.T) {
	conf, _ := ServerTLSConfig(TLSOptions{}, nil)
	ln, err := Listen("127.0.0.1:0", conf, Options{MaxIncomingStreams: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		c, err := ln.Accept(ctx)
		if err == nil {
			<-ctx.Done()
			_ = c.CloseWithError(0, "")
		}
	}()
	client, _ := ClientTLSConfig(ClientTLSOptions{Insecure: true})
	conn, err := Dial(ctx, ln.Addr().String(), client, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 2 {
		if _, err := conn.OpenStream(); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	if _, err := conn.OpenStream(); err == nil {
		t.Fatal("third stream opened beyond MaxIncomingStreams=2")
	}
}

func TestUDPBufferLogLine(t *testing.T) {
	conf, _ := ServerTLSConfig(TLSOptions{}, nil)
	log, logs := newTestLogger()
	ln, err := Listen("127.0.0.1:0", conf, Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := logs.String()
	if n := strings.Count(out, "udp socket buffers"); n != 1 {
		t.Fatalf("want exactly one buffer log line, got %d:\n%s", n, out)
	}
	if !strings.Contains(out, "recv_target=8388608") || !strings.Contains(out, "send_target=8388608") {
		t.Errorf("log line lacks targets:\n%s", out)
	}
	if strings.Contains(out, "level=WARN") && !strings.Contains(out, "net.core.rmem_max") {
		t.Errorf("warning does not name the sysctl:\n%s", out)
	}

	// Negative sizes leave the socket alone and log nothing.
	log2, logs2 := newTestLogger()
	ln2, err := Listen("127.0.0.1:0", conf, Options{UDPReceiveBuffer: -1, UDPSendBuffer: -1}, log2)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if strings.Contains(logs2.String(), "udp socket buffers") {
		t.Errorf("buffers adjusted although disabled:\n%s", logs2)
	}
}

func TestClientTransportSharesSocket(t *testing.T) {
	conf, _ := ServerTLSConfig(TLSOptions{}, nil)
	addr := startEcho(t, conf).Addr().String()
	tr, err := NewClientTransport(Options{KeepAlivePeriod: DefaultClientKeepAlivePeriod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	client, _ := ClientTLSConfig(ClientTLSOptions{Insecure: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := tr.Dial(ctx, addr, client)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.Dial(ctx, addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if a.LocalAddr().String() != b.LocalAddr().String() {
		t.Errorf("connections use different sockets: %v vs %v", a.LocalAddr(), b.LocalAddr())
	}
	_ = a.CloseWithError(0, "")
	_ = b.CloseWithError(0, "")

	if _, err := tr.Dial(ctx, "localhost:"+portOf(addr), client); err != nil {
		t.Errorf("dial by host name: %v", err)
	}
	if _, err := tr.Dial(ctx, "no-port", client); err == nil {
		t.Error("dial without a port: no error")
	}
}

func TestDialHonoursContext(t *testing.T) {
	// A UDP socket that never answers.
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	client, _ := ClientTLSConfig(ClientTLSOptions{Insecure: true})
	_, err = Dial(ctx, sink.LocalAddr().String(), client, Options{}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestListenerClose(t *testing.T) {
	conf, _ := ServerTLSConfig(TLSOptions{}, nil)
	ln, err := Listen("127.0.0.1:0", conf, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ln.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	// The port is free again.
	ln2, err := Listen(addr, conf, Options{}, nil)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", addr, err)
	}
	_ = ln2.Close()
	if _, err := Listen("127.0.0.1:0", nil, Options{}, nil); err == nil {
		t.Error("Listen with nil TLS config: no error")
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// With a stable StatelessResetKey, a broker restarted on the same address
// resets the connections of its previous life, so clients notice at once.
func TestStatelessResetAfterRestart(t *testing.T) {
	key := quic.StatelessResetKey{1, 2, 3}
	conf, _ := ServerTLSConfig(TLSOptions{}, nil)
	opts := Options{StatelessResetKey: &key}
	ln, err := Listen("127.0.0.1:0", conf, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	accepted := make(chan struct{})
	go func() {
		if _, err := ln.Accept(ctx); err == nil {
			close(accepted)
		}
	}()
	client, _ := ClientTLSConfig(ClientTLSOptions{Insecure: true})
	conn, err := Dial(ctx, addr, client, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-accepted
	_ = ln.Close() // drops the connection without telling the client

	ln2, err := Listen(addr, conf, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Keep sending full-size packets: a stateless reset must be smaller than
	// the packet that triggers it, so a lone tiny packet may go unanswered.
	go func() {
		buf := make([]byte, 1200)
		for conn.Context().Err() == nil && ctx.Err() == nil {
			if _, err := str.Write(buf); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-conn.Context().Done():
		var reset *quic.StatelessResetError
		if cause := context.Cause(conn.Context()); !errors.As(cause, &reset) {
			t.Errorf("connection ended with %v, want a stateless reset", cause)
		}
	case <-time.After(20 * time.Second): // below the 30s idle timeout, with room for a loaded machine's retransmission backoff
		t.Fatal("client did not learn that the broker restarted")
	}
}
