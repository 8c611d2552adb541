package faultnet

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// peer is a plain UDP socket on 127.0.0.1 that records what it reads and,
// when echo is set, sends every datagram back to its sender.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	echo bool

	mu    sync.Mutex
	got   []uint64 // sequence numbers read, in order
	from  map[string]bool
	done  chan struct{}
	reads chan struct{}
}

func newPeer(t *testing.T, echo bool) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, conn: c, echo: echo, from: map[string]bool{}, done: make(chan struct{}), reads: make(chan struct{}, 1)}
	go p.run()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}

func (p *peer) run() {
	defer close(p.done)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		if n >= 8 {
			p.got = append(p.got, binary.BigEndian.Uint64(buf))
		}
		p.from[from.String()] = true
		p.mu.Unlock()
		select {
		case p.reads <- struct{}{}:
		default:
		}
		if p.echo {
			p.conn.WriteToUDP(buf[:n], from)
		}
	}
}

func (p *peer) addr() string { return p.conn.LocalAddr().String() }

func (p *peer) received() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *peer) senders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.from)
}

// waitFor waits until the peer has read n datagrams (failing after a
// generous bound: these are liveness checks, not timings).
func (p *peer) waitFor(n int) []uint64 {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := p.received(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("read %d datagrams, want %d", len(p.received()), n)
		}
		select {
		case <-p.reads:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// client is a plain UDP socket that sends to the proxy and records the
// replies.
func client(t *testing.T) *peer {
	t.Helper()
	return newPeer(t, false)
}

func (p *peer) send(to *net.UDPAddr, i uint64) {
	p.t.Helper()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], i)
	if _, err := p.conn.WriteToUDP(b[:], to); err != nil {
		p.t.Fatal(err)
	}
}

func newProxy(t *testing.T, target string, o Options) *Proxy {
	t.Helper()
	px, err := New(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		px.Close()
		if t.Failed() {
			t.Logf("%v (replay with Options.Seed = %d)", px, px.Seed())
		}
	})
	return px
}

// waitStats waits until the proxy has decided the fate of n datagrams.
func waitStats(t *testing.T, px *Proxy, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := px.Stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v never reached the expected state", s)
		}
		time.Sleep(time.Millisecond)
	}
}

// The zero Options is a perfect link, both ways, in order.
func TestFaultnetPerfectLink(t *testing.T) {
	srv := newPeer(t, true)
	px := newProxy(t, srv.addr(), Options{})
	if px.Seed() == 0 {
		t.Fatal("no seed picked")
	}
	c := client(t)
	const n = 200
	for i := range uint64(n) {
		c.send(px.Addr(), i) // one at a time: no kernel buffer can overflow
		c.waitFor(int(i) + 1)
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i)
	}
	if got := srv.received(); !slices.Equal(got, want) {
		t.Fatalf("server read %v", got)
	}
	if got := c.received(); !slices.Equal(got, want) {
		t.Fatalf("client read %v", got)
	}
	// The counter moves just after the write the client may already have
	// read.
	waitStats(t, px, func(s Stats) bool { return s.Forwarded == 2*n })
	if s := px.Stats(); s != (Stats{Received: 2 * n, Forwarded: 2 * n, Clients: 1}) {
		t.Fatalf("stats %+v", s)
	}
}

// Each client source address gets its own upstream socket, and replies go
// back to the client they answer.
func TestFaultnetClientsAreSeparated(t *testing.T) {
	srv := newPeer(t, true)
	px := newProxy(t, srv.addr(), Options{})
	a, b := client(t), client(t)
	for i := range uint64(5) {
		a.send(px.Addr(), i)
		b.send(px.Addr(), 100+i)
	}
	ga, gb := a.waitFor(5), b.waitFor(5)
	if !slices.Equal(ga, []uint64{0, 1, 2, 3, 4}) || !slices.Equal(gb, []uint64{100, 101, 102, 103, 104}) {
		t.Fatalf("a read %v, b read %v", ga, gb)
	}
	if srv.senders() != 2 || px.Stats().Clients != 2 {
		t.Fatalf("server saw %d senders, proxy %+v", srv.senders(), px.Stats())
	}
}

// sendAll sends n numbered datagrams and waits until the proxy has decided
// each one's fate.
func sendAll(t *testing.T, px *Proxy, c *peer, n int) {
	t.Helper()
	for i := range uint64(n) {
		c.send(px.Addr(), i)
		// Pace: wait for the proxy to read it, so the kernel never drops.
		waitStats(t, px, func(s Stats) bool { return s.Received >= i+1 })
	}
}

// Drop discards about the given share, and the same seed discards the same
// datagrams.
func TestFaultnetDropIsSeededAndCounted(t *testing.T) {
	const n = 400
	run := func(seed uint64) []uint64 {
		srv := newPeer(t, false)
		px := newProxy(t, srv.addr(), Options{Seed: seed, Faults: Faults{Drop: 0.3}})
		c := client(t)
		sendAll(t, px, c, n)
		s := waitStats(t, px, func(s Stats) bool { return s.Forwarded+s.Dropped == n })
		got := srv.waitFor(int(s.Forwarded))
		if s.Dropped < n/10 || s.Dropped > n/2 || s.Duplicated != 0 {
			t.Fatalf("seed %d: stats %+v for 30%% drop", seed, s)
		}
		if !slices.IsSorted(got) {
			t.Fatalf("seed %d: reordered without delay: %v", seed, got)
		}
		return got
	}
	a, b, other := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Fatalf("seed 42 kept different datagrams:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Fatalf("seeds 42 and 43 kept the same datagrams")
	}
}

// Drop 1 loses everything; setting it back to 0 restores the link.
func TestFaultnetDropAll(t *testing.T) {
	srv := newPeer(t, true)
	px := newProxy(t, srv.addr(), Options{Faults: Faults{Drop: 1}})
	c := client(t)
	sendAll(t, px, c, 50)
	if s := waitStats(t, px, func(s Stats) bool { return s.Dropped == 50 }); s.Forwarded != 0 || len(srv.received()) != 0 {
		t.Fatalf("stats %+v, server read %d", s, len(srv.received()))
	}
	px.SetFaults(Faults{})
	c.send(px.Addr(), 7)
	if got := c.waitFor(1); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("after restoring: %v", got)
	}
}

// Duplicate 1 sends every datagram twice.
func TestFaultnetDuplicate(t *testing.T) {
	srv := newPeer(t, false)
	px := newProxy(t, srv.addr(), Options{Faults: Faults{Duplicate: 1}})
	c := client(t)
	const n = 50
	sendAll(t, px, c, n)
	got := srv.waitFor(2 * n)
	for i := range uint64(n) {
		if got[2*i] != i || got[2*i+1] != i {
			t.Fatalf("datagram %d: server read %v", i, got)
		}
	}
	if s := waitStats(t, px, func(s Stats) bool { return s.Forwarded == 2*n }); s.Duplicated != n || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Jitter reorders but loses nothing.
func TestFaultnetJitterReorders(t *testing.T) {
	srv := newPeer(t, false)
	px := newProxy(t, srv.addr(), Options{Seed: 7, Faults: Faults{Delay: time.Millisecond, Jitter: 20 * time.Millisecond}})
	c := client(t)
	const n = 200
	for i := range uint64(n) {
		c.send(px.Addr(), i) // no pacing: all within a few ms of each other
	}
	got := srv.waitFor(n)
	if slices.IsSorted(got) {
		t.Fatalf("%d datagrams with 20ms of jitter arrived in order", n)
	}
	sorted := slices.Sorted(slices.Values(got))
	for i := range uint64(n) {
		if sorted[i] != i {
			t.Fatalf("lost or duplicated: %v", sorted)
		}
	}
	if s := waitStats(t, px, func(s Stats) bool { return s.Forwarded == n }); s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A blackhole drops both ways until it is turned off, including datagrams
// that were delayed when it went on.
func TestFaultnetBlackhole(t *testing.T) {
	srv := newPeer(t, true)
	px := newProxy(t, srv.addr(), Options{})
	c := client(t)
	c.send(px.Addr(), 1)
	c.waitFor(1)

	// Delayed datagrams in flight when the blackhole starts are lost too.
	px.SetFaults(Faults{Delay: 500 * time.Millisecond}) // long enough to turn the blackhole on first
	c.send(px.Addr(), 2)
	waitStats(t, px, func(s Stats) bool { return s.Received == 3 })
	px.SetBlackhole(true)
	if f := px.Faults(); !f.Blackhole || f.Delay != 500*time.Millisecond {
		t.Fatalf("faults %+v", f)
	}
	for i := range uint64(20) {
		c.send(px.Addr(), 10+i)
	}
	waitStats(t, px, func(s Stats) bool { return s.Dropped == 21 })
	if got := srv.received(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("server read %v through the blackhole", got)
	}

	// The server's replies are dropped too.
	px.SetBlackhole(false)
	px.SetFaults(Faults{})
	c.send(px.Addr(), 3)
	srv.waitFor(2)
	c.waitFor(2)
	px.SetBlackhole(true)
	if _, err := srv.conn.WriteToUDP(make([]byte, 8), srv.firstSender(t)); err != nil {
		t.Fatal(err)
	}
	waitStats(t, px, func(s Stats) bool { return s.Dropped == 22 })
	px.SetBlackhole(false)
	c.send(px.Addr(), 4)
	if got := c.waitFor(3); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Fatalf("client read %v", got)
	}
}

func (p *peer) firstSender(t *testing.T) *net.UDPAddr {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for a := range p.from {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		return ua
	}
	t.Fatal("no sender")
	return nil
}

// Faults out of range are clamped; the zero value is a perfect link.
func TestFaultnetFaultsNormalized(t *testing.T) {
	f := Faults{Drop: 2, Duplicate: -1, Delay: -time.Second, Jitter: -time.Second}.normalized()
	if f != (Faults{Drop: 1}) {
		t.Fatalf("normalized %+v", f)
	}
}

// Faults change under traffic from many goroutines, and Close with
// datagrams still delayed stops everything (goleak checks in TestMain).
func TestFaultnetConcurrentChangesAndClose(t *testing.T) {
	srv := newPeer(t, true)
	px, err := New(srv.addr(), Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		c := client(t)
		wg.Go(func() {
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.send(px.Addr(), i)
				time.Sleep(100 * time.Microsecond)
			}
		})
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				px.SetFaults(Faults{Drop: 0.1 * float64(w), Duplicate: 0.1, Delay: time.Duration(i%3) * time.Millisecond, Jitter: time.Second})
				px.SetBlackhole(i%7 == 0)
				_ = px.Stats()
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	px.SetFaults(Faults{Delay: time.Hour})
	c := client(t)
	c.send(px.Addr(), 1)
	waitStats(t, px, func(s Stats) bool { return s.Clients == 5 })
	px.Close()
	px.Close()
	if s := px.Stats(); s.Received == 0 || s.Forwarded == 0 || s.Dropped == 0 || s.Duplicated == 0 {
		t.Fatalf("stats %+v", s)
	}
	// Closed: nothing is forwarded any more.
	c.send(px.Addr(), 2)
	if _, err := New("not an address", Options{}); err == nil {
		t.Fatal("New accepted a bad target")
	}
}
