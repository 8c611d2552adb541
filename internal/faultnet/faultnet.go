// Package faultnet is a UDP proxy that injects network faults, for tests
// that run QUIC (or any datagram protocol) over a bad link instead of a
// perfect loopback.
//
// A Proxy listens on 127.0.0.1 (port 0) and forwards datagrams between
// its clients and one target address. Each client source address gets its
// own upstream UDP socket (kept until Close), so the target sees one peer
// per client and its replies are routed back to the right client. Every
// datagram, in either direction, goes through the current Faults:
//
//   - Drop: the probability that it is discarded;
//   - Duplicate: the probability that it is sent twice;
//   - Delay and Jitter: it is held Delay plus a uniform random [0, Jitter)
//     before it is sent, so datagrams overtake each other (reordering);
//   - Blackhole: everything is discarded, both ways, until it is turned
//     off (datagrams already delayed are discarded when they fall due).
//
// The zero Faults is a perfect link. Faults may be changed at any time,
// from any goroutine (SetFaults, SetBlackhole); they apply to the
// datagrams that arrive afterwards.
//
// The random choices are deterministic for a seed (Options.Seed, or a
// random one reported by Seed): every flow (one client's datagrams in one
// direction) draws from its own math/rand/v2 PCG stream seeded with the
// seed and the flow's number, so the k-th datagram of a flow meets the same
// fate in every run with the same seed and the same Faults, whatever the
// other flows do.
// Flows are numbered in the order the clients first send (client n's flow
// to the target is 2n, the reverse 2n+1). Timing (when a delayed datagram
// is really sent, what the kernel drops) is not replayed. Tests print the
// seed when they fail so a failure can be run again.
//
// Stats counts what the proxy did. Close stops every goroutine the proxy
// started and closes its sockets.
package faultnet

import (
	"container/heap"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are the impairments applied to every datagram. The zero value is a
// perfect link.
type Faults struct {
	// Drop is the probability, in [0, 1], that a datagram is discarded.
	// Values outside the range are clamped. Default 0.
	Drop float64
	// Duplicate is the probability, in [0, 1], that a datagram that is
	// not dropped is sent twice (the copy gets its own delay). Default 0.
	Duplicate float64
	// Delay is the fixed time every datagram is held. Default 0.
	// Negative counts as 0.
	Delay time.Duration
	// Jitter adds a uniform random [0, Jitter) to Delay for each datagram,
	// which reorders datagrams that are closer together than Jitter.
	// Default 0. Negative counts as 0.
	Jitter time.Duration
	// Blackhole discards every datagram in both directions while set.
	Blackhole bool
}

// normalized returns f with its fields in range.
func (f Faults) normalized() Faults {
	clamp := func(p float64) float64 {
		if math.IsNaN(p) || p < 0 {
			return 0
		}
		return min(p, 1)
	}
	f.Drop, f.Duplicate = clamp(f.Drop), clamp(f.Duplicate)
	f.Delay, f.Jitter = max(f.Delay, 0), max(f.Jitter, 0)
	return f
}

// Options configure a Proxy. The zero value forwards perfectly with a
// random seed.
type Options struct {
	// Seed seeds the random choices. 0 picks a random seed; Seed reports
	// the one in use either way.
	Seed uint64
	// Faults are the initial faults. Default: none.
	Faults Faults
	// ReadBuffer is the kernel receive buffer asked for each socket, in
	// bytes (best effort). Default 4 MiB; negative leaves the OS default.
	ReadBuffer int
}

// Stats are the proxy's counters, in datagrams, over both directions.
type Stats struct {
	// Received counts datagrams read from clients or the target.
	Received uint64
	// Forwarded counts datagrams written on (duplicates included).
	Forwarded uint64
	// Dropped counts datagrams discarded by Drop or Blackhole.
	Dropped uint64
	// Duplicated counts extra copies sent by Duplicate.
	Duplicated uint64
	// Clients counts client source addresses seen (upstream sockets opened).
	Clients uint64
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// Proxy is a running fault-injecting UDP proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	ln     *net.UDPConn
	target *net.UDPAddr
	seed   uint64
	rbuf   int

	faults atomic.Pointer[Faults]
	setMu  sync.Mutex // serializes read-modify-write of faults

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

	sched scheduler
	wg    sync.WaitGroup
	done  chan struct{}
	once  sync.Once

	received, forwarded, dropped, duplicated, clients atomic.Uint64
}

// session is one client source address and its upstream socket.
type session struct {
	client   *net.UDPAddr
	upstream *net.UDPConn
	up, down *rand.Rand // the two flows' random streams
}

// New starts a proxy on 127.0.0.1:0 forwarding to target (host:port).
func New(target string, opts Options) (*Proxy, error) {
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("faultnet: resolve target %q: %w", target, err)
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("faultnet: listen: %w", err)
	}
	seed := opts.Seed
	for seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:]) // never fails (crypto/rand)
		seed = binary.LittleEndian.Uint64(b[:])
	}
	rbuf := opts.ReadBuffer
	if rbuf == 0 {
		rbuf = 4 << 20
	}
	p := &Proxy{
		ln: ln, target: taddr, seed: seed, rbuf: rbuf,
		sessions: map[string]*session{},
		done:     make(chan struct{}),
	}
	p.setReadBuffer(ln)
	f := opts.Faults.normalized()
	p.faults.Store(&f)
	p.sched.init()
	p.wg.Add(2)
	go p.readClients()
	go p.runScheduler()
	return p, nil
}

func (p *Proxy) setReadBuffer(c *net.UDPConn) {
	if p.rbuf > 0 {
		_ = c.SetReadBuffer(p.rbuf) // best effort: the kernel may cap it
	}
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() *net.UDPAddr { return p.ln.LocalAddr().(*net.UDPAddr) }

// Seed is the seed of the random choices (print it when a test fails).
func (p *Proxy) Seed() uint64 { return p.seed }

// Faults returns the current faults.
func (p *Proxy) Faults() Faults { return *p.faults.Load() }

// SetFaults replaces the faults (normalized into range).
func (p *Proxy) SetFaults(f Faults) {
	f = f.normalized()
	p.setMu.Lock()
	p.faults.Store(&f)
	p.setMu.Unlock()
}

// SetBlackhole turns the blackhole on or off, keeping the other faults.
func (p *Proxy) SetBlackhole(on bool) {
	p.setMu.Lock()
	f := *p.faults.Load()
	f.Blackhole = on
	p.faults.Store(&f)
	p.setMu.Unlock()
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Received: p.received.Load(), Forwarded: p.forwarded.Load(), Dropped: p.dropped.Load(),
		Duplicated: p.duplicated.Load(), Clients: p.clients.Load(),
	}
}

// String describes the proxy for test logs.
func (p *Proxy) String() string {
	f, s := p.Faults(), p.Stats()
	return fmt.Sprintf("faultnet %v->%v seed=%d faults=%+v stats=%+v", p.Addr(), p.target, p.seed, f, s)
}

// Close stops the proxy: its sockets are closed, datagrams still delayed
// are discarded, and every goroutine has exited when it returns. Safe to
// call more than once.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		sessions := p.sessions
		p.sessions = nil
		p.mu.Unlock()
		close(p.done)
		p.ln.Close()
		for _, s := range sessions {
			s.upstream.Close()
		}
	})
	p.wg.Wait()
	return nil
}

// readClients forwards datagrams from clients to the target.
func (p *Proxy) readClients() {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors: keep serving
		}
		s, ok := p.session(from)
		if !ok {
			return // closed
		}
		if s == nil { // no upstream socket: the datagram is lost
			p.received.Add(1)
			p.dropped.Add(1)
			continue
		}
		p.handle(buf[:n], s.up, s.upstream, nil)
	}
}

// session returns the session of a client address, opening its upstream
// socket on first use (nil if it cannot be opened); ok is false once the
// proxy is closed.
func (p *Proxy) session(from *net.UDPAddr) (s *session, ok bool) {
	key := from.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	if s, ok := p.sessions[key]; ok {
		return s, true
	}
	up, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil, true
	}
	p.setReadBuffer(up)
	n := p.clients.Add(1) - 1
	s = &session{
		client: from, upstream: up,
		up:   rand.New(rand.NewPCG(p.seed, 2*n)),
		down: rand.New(rand.NewPCG(p.seed, 2*n+1)),
	}
	p.sessions[key] = s
	p.wg.Add(1)
	go p.readUpstream(s)
	return s, true
}

// readUpstream forwards the target's datagrams back to one client.
func (p *Proxy) readUpstream(s *session) {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := s.upstream.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. connection refused (ICMP) while the target is down
		}
		p.handle(buf[:n], s.down, p.ln, s.client)
	}
}

// handle applies the faults to one datagram of a flow and sends or
// schedules it. It runs on the flow's only reader goroutine, which owns rng.
func (p *Proxy) handle(b []byte, rng *rand.Rand, conn *net.UDPConn, to *net.UDPAddr) {
	p.received.Add(1)
	f := p.faults.Load()
	if f.Blackhole || (f.Drop > 0 && rng.Float64() < f.Drop) {
		p.dropped.Add(1)
		return
	}
	copies := 1
	if f.Duplicate > 0 && rng.Float64() < f.Duplicate {
		copies = 2
		p.duplicated.Add(1)
	}
	for range copies {
		d := f.Delay
		if f.Jitter > 0 {
			d += time.Duration(rng.Int64N(int64(f.Jitter)))
		}
		if d <= 0 {
			p.send(conn, to, b)
			continue
		}
		p.sched.add(time.Now().Add(d), packet{conn: conn, to: to, data: append([]byte(nil), b...)})
	}
}

// send writes one datagram unless the blackhole is on.
func (p *Proxy) send(conn *net.UDPConn, to *net.UDPAddr, b []byte) {
	if p.faults.Load().Blackhole {
		p.dropped.Add(1)
		return
	}
	var err error
	if to == nil {
		_, err = conn.Write(b)
	} else {
		_, err = conn.WriteToUDP(b, to)
	}
	if err == nil {
		p.forwarded.Add(1)
	}
}

// runScheduler sends delayed datagrams when they fall due.
func (p *Proxy) runScheduler() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, ok := p.sched.due(time.Now())
		for _, pk := range due {
			p.send(pk.conn, pk.to, pk.data)
		}
		if ok {
			continue // more may be due: check again before sleeping
		}
		wait := time.Hour
		if next, ok := p.sched.next(); ok {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-p.done:
			return
		case <-p.sched.wake:
		case <-timer.C:
		}
	}
}

// packet is a delayed datagram.
type packet struct {
	at   time.Time
	seq  uint64 // ties keep arrival order
	conn *net.UDPConn
	to   *net.UDPAddr
	data []byte
}

// scheduler holds delayed datagrams in a min-heap by due time.
type scheduler struct {
	mu   sync.Mutex
	h    packetHeap
	seq  uint64
	wake chan struct{}
}

func (s *scheduler) init() { s.wake = make(chan struct{}, 1) }

func (s *scheduler) add(at time.Time, pk packet) {
	s.mu.Lock()
	pk.at, pk.seq = at, s.seq
	s.seq++
	heap.Push(&s.h, pk)
	first := s.h[0].seq == pk.seq
	s.mu.Unlock()
	if first { // the new datagram is the earliest: the timer must move
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// due pops up to a bounded number of datagrams due by now; more reports
// whether the bound cut the list short.
func (s *scheduler) due(now time.Time) (out []packet, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.h) > 0 && !s.h[0].at.After(now) {
		if len(out) == 256 {
			return out, true
		}
		out = append(out, heap.Pop(&s.h).(packet))
	}
	return out, false
}

func (s *scheduler) next() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].at, true
}

type packetHeap []packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = packet{}
	*h = old[:len(old)-1]
	return x
}
