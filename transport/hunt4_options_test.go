package transport

import (
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// Out-of-range options must not crash the process: quic-go panics while
// encoding a transport parameter above 2^62-1 (windows) or a negative idle
// timeout, on the broker at the first handshake and on the client at Dial.
func TestHunt4OutOfRangeOptionsDoNotPanic(t *testing.T) {
	absurd := Options{
		InitialStreamReceiveWindow:     1 << 63,
		MaxStreamReceiveWindow:         1 << 63,
		InitialConnectionReceiveWindow: ^uint64(0),
		MaxConnectionReceiveWindow:     1, // less than the initial window
		MaxIdleTimeout:                 -time.Second,
		KeepAlivePeriod:                -time.Second,
		MaxIncomingStreams:             1 << 62,
		MaxIncomingUniStreams:          1 << 62,
	}
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := startEchoOn(t, "127.0.0.1:0", conf, absurd)
	if err := roundTripOpts(t, ln.Addr().String(), insecureClient(), absurd); err != nil {
		t.Fatalf("round trip with out-of-range options: %v", err)
	}

	q := absurd.QUICConfig()
	for name, v := range map[string]uint64{
		"InitialStreamReceiveWindow":     q.InitialStreamReceiveWindow,
		"MaxStreamReceiveWindow":         q.MaxStreamReceiveWindow,
		"InitialConnectionReceiveWindow": q.InitialConnectionReceiveWindow,
		"MaxConnectionReceiveWindow":     q.MaxConnectionReceiveWindow,
	} {
		if v > quicvarint.Max {
			t.Errorf("%s = %d, above the QUIC maximum %d", name, v, uint64(quicvarint.Max))
		}
	}
	if q.MaxStreamReceiveWindow < q.InitialStreamReceiveWindow || q.MaxConnectionReceiveWindow < q.InitialConnectionReceiveWindow {
		t.Errorf("max window below initial: %+v", q)
	}
	if q.MaxIdleTimeout != DefaultMaxIdleTimeout {
		t.Errorf("negative MaxIdleTimeout became %v, want the default %v", q.MaxIdleTimeout, DefaultMaxIdleTimeout)
	}
	if q.KeepAlivePeriod != 0 {
		t.Errorf("negative KeepAlivePeriod became %v, want 0 (none)", q.KeepAlivePeriod)
	}
}

// A broker on the IPv6 loopback is reachable at [::1].
func TestHunt4IPv6Loopback(t *testing.T) {
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		_ = c.Close()
	}
	dir := t.TempDir()
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := startEchoOn(t, "[::1]:0", conf, Options{})
	// The development certificate names ::1, so a client verifying that
	// name connects.
	client, err := ClientTLSConfig(ClientTLSOptions{CAFile: dir + "/" + DevCertFile, ServerName: "::1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, ln.Addr().String(), client); err != nil {
		t.Fatalf("round trip over [::1]: %v", err)
	}
}
