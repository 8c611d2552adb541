package server_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// pausablePacketConn is a client socket whose reads can be stopped: the
// client's QUIC stack then neither receives nor acknowledges anything,
// as a peer that withholds its ACKs.
type pausablePacketConn struct {
	*net.UDPConn
	mu     sync.Mutex
	paused bool
	resume *sync.Cond
}

func newPausablePacketConn(t *testing.T) *pausablePacketConn {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &pausablePacketConn{UDPConn: uc}
	p.resume = sync.NewCond(&p.mu)
	return p
}

func (p *pausablePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	p.mu.Lock()
	for p.paused {
		p.resume.Wait()
	}
	p.mu.Unlock()
	return p.UDPConn.ReadFrom(b)
}

func (p *pausablePacketConn) setPaused(v bool) {
	p.mu.Lock()
	p.paused = v
	p.mu.Unlock()
	p.resume.Broadcast()
}

// A subscriber's bound (--queue-capacity, --queue-max-bytes) holds when
// the broker cannot send: a client that advertises huge flow-control
// windows and then stops acknowledging leaves the broker's congestion
// window closed while flow control still allows everything. Events then
// wait in the subscriber's queue, and beyond its bound are dropped and
// counted; they do not pile up, unbounded and uncounted, in the QUIC
// stream's send buffer.
func TestHunt14SubscriberBoundHoldsWhenPeerStopsAcking(t *testing.T) {
	const queueBytes = 128 << 10
	const events, size = 4000, 1000 // 4 MB, each event frame small enough for the direct path
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: 128, QueueMaxBytes: queueBytes}))
	pc := newPausablePacketConn(t)
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() {
		pc.setPaused(false)
		tr.Close()
	})
	const huge = 1 << 30
	conf := transport.Options{InitialStreamReceiveWindow: huge, MaxStreamReceiveWindow: huge,
		InitialConnectionReceiveWindow: huge, MaxConnectionReceiveWindow: huge}.QUICConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	udpAddr, err := net.ResolveUDPAddr("udp", tb.Addr)
	if err != nil {
		t.Fatal(err)
	}
	qc, err := tr.Dial(ctx, udpAddr, tb.ClientTLS, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	bs, err := qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawStream{t: t, s: bs, r: wire.NewReader(bs, 0)}
	s.auth("t1", nil)
	s.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"})
	if m, ok := s.readMsg().(*wire.Subscribed); !ok {
		t.Fatalf("subscribe: %#v", m)
	}
	us, err := qc.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.NewReader(us, 0).ReadFrame(); err != nil { // event_stream_hello
		t.Fatal(err)
	}
	pc.setPaused(true)

	st, err := tb.Broker.Stream("t1", "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	for range events {
		if _, err := st.Publish(ctx, [][]byte{make([]byte, size)}); err != nil {
			t.Fatal(err)
		}
	}
	sub := tb.Broker.Stats().Streams[0].Subscriptions[0]
	if sub.Dropped == 0 {
		t.Fatalf("%d events of %d bytes published to a subscriber that acknowledges nothing: none dropped, %d delivered "+
			"(queued %d of %d bytes): the broker holds them beyond the subscriber's bound", events, size, sub.Delivered, sub.QueueBytes, queueBytes)
	}
}
