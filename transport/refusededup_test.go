package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/internal/testwait"
)

// A dial whose refusals are lost retransmits its Initial packets (quic-go:
// after about 300 ms, then doubling); the listener refuses each, and the
// whole dial is still reported once.
func TestRefuseNewCountsRetransmittedDialOnce(t *testing.T) {
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := startEchoOn(t, "127.0.0.1:0", conf, Options{})
	var reported atomic.Int64
	ln.RefuseNew(func(net.Addr) { reported.Add(1) })

	// Three refusals dropped: the first flight (one or two packets) and
	// at least one retransmission reached the listener.
	const refusals = 3
	px := startDropReplies(t, ln.Addr().String(), refusals)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dialed := make(chan error, 1)
	go func() {
		c, err := Dial(ctx, px.addr(), insecureClient(), Options{}, nil)
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	testwait.Within(t, "the listener refusing a retransmitted Initial", px.enough)
	cancel()
	if err := <-dialed; !errors.Is(err, context.Canceled) {
		t.Fatalf("dial: %v, want it cancelled (the refusals were dropped)", err)
	}
	if n := reported.Load(); n != 1 {
		t.Fatalf("one dial whose %d+ Initial packets were refused reported %d times, want once", refusals, n)
	}
}

// dropReplies relays UDP datagrams from one client to a listener and
// drops the listener's answers, so the client retransmits.
type dropReplies struct {
	front  *net.UDPConn
	enough chan struct{} // closed once want answers were dropped
}

func (p *dropReplies) addr() string { return p.front.LocalAddr().String() }

// startDropReplies relays to target until the test ends; enough is closed
// after want datagrams from target were dropped.
func startDropReplies(t *testing.T, target string, want int) *dropReplies {
	t.Helper()
	front, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	p := &dropReplies{front: front, enough: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → listener
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = back.Write(buf[:n])
		}
	}()
	go func() { // listener → nowhere
		defer wg.Done()
		buf := make([]byte, 2048)
		for dropped := 0; ; {
			if _, err := back.Read(buf); err != nil {
				return
			}
			if dropped++; dropped == want {
				close(p.enough)
			}
		}
	}()
	t.Cleanup(func() {
		_ = front.Close()
		_ = back.Close()
		wg.Wait()
	})
	return p
}

// The refusals of one address within the window are one dial, whatever
// quic-go's retransmissions within its 5 s handshake timeout; after the
// window, the address counts again.
func TestRefusalDedupWindow(t *testing.T) {
	clock := testclock.New()
	var got []string
	r := newRefusal(func(a net.Addr) { got = append(got, a.String()) }, clock.Now)
	a := udpAddr(t, "192.0.2.1:4000")
	start := clock.Now()
	// quic-go's PTOs for an initial RTT of 100 ms: 0.3 s, doubling.
	for _, at := range []time.Duration{0, 300 * time.Millisecond, 900 * time.Millisecond, 2100 * time.Millisecond, 4500 * time.Millisecond} {
		clock.Set(start.Add(at))
		r.note(a)
	}
	if len(got) != 1 {
		t.Fatalf("Initial packets of one dial (until 4.5 s) reported %d times, want once: %v", len(got), got)
	}
	clock.Set(start.Add(refuseDedupWindow))
	r.note(a)
	if len(got) != 2 {
		t.Fatalf("a refusal one window later reported %d times in all, want twice", len(got))
	}
}

// The dedup state holds at most refuseRecentMax addresses, and forgets
// those past the window.
func TestRefusalDedupBounded(t *testing.T) {
	clock := testclock.New()
	reported := 0
	r := newRefusal(func(net.Addr) { reported++ }, clock.Now)
	for i := range refuseRecentMax + 100 {
		r.note(udpAddr(t, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1000+i)).String()))
	}
	if reported != refuseRecentMax+100 {
		t.Fatalf("%d distinct addresses reported %d times", refuseRecentMax+100, reported)
	}
	if n := r.remembered(); n > refuseRecentMax {
		t.Fatalf("%d addresses remembered, want at most %d", n, refuseRecentMax)
	}
	clock.Advance(refuseDedupWindow)
	r.note(udpAddr(t, "192.0.2.2:1"))
	if n := r.remembered(); n != 1 {
		t.Fatalf("%d addresses remembered one window later, want 1 (the others pruned)", n)
	}
}

func udpAddr(t *testing.T, s string) net.Addr {
	t.Helper()
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s))
}
