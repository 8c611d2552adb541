package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// A stateless reset on one of the client's connections says that the
// broker it reached has lost every connection's state: it crashed and was
// restarted (with the same stateless reset key, as `felix serve` keeps
// one in its data dir). The client's other connections to the old broker
// are just as dead, but one that only receives (a quiet subscription, a
// waiting queue consumer) sends nothing the restarted broker could answer
// with a reset of its own: its keep-alive packets are too small to be
// answered (quic-go answers only packets longer than a reset, 43 bytes
// and up), so it would notice only at its idle timeout
// (Options.EventIdleTimeout and a keep-alive period more).
//
// So after a reset the client probes each of its other connections that
// was established before the reset: it opens a stream and authenticates
// it, which takes a packet long enough to be answered. On a dead
// connection the restarted broker answers with a reset within a round
// trip, and the connection's subscriptions and consumers re-establish
// themselves at once; on a live one the broker authenticates the stream,
// and the client ends it. Probes run on one goroutine, one connection at
// a time, each bounded by resetProbeTimeout; resets arriving meanwhile
// start one more round, for the connections established before the latest
// of them.

// resetProbeTimeout bounds one connection's probe.
const resetProbeTimeout = 2 * time.Second

// resetProber coalesces probe rounds (see above).
type resetProber struct {
	seq atomic.Uint64 // numbers the client's connections as they are established

	mu      sync.Mutex
	running bool   // a round's goroutine runs
	pending bool   // another round is asked for
	below   uint64 // probe connections numbered up to this
	rounds  uint64 // rounds run, for tests
}

// watchReset numbers sc (a new connection of the client) and starts a
// probe round when the broker resets it statelessly.
func (c *Client) watchReset(sc *slotConn) {
	sc.seq = c.probe.seq.Add(1)
	context.AfterFunc(sc.conn.Context(), func() {
		var reset *quic.StatelessResetError
		if c.isClosed() || !errors.As(context.Cause(sc.conn.Context()), &reset) {
			return
		}
		c.log.Debug("felix: stateless reset (the broker restarted); probing the other connections", "conn_seq", sc.seq)
		c.probeAfterReset(c.probe.seq.Load())
	})
}

// probeAfterReset asks for a round probing the connections numbered up
// to below.
func (c *Client) probeAfterReset(below uint64) {
	p := &c.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	p.below = max(p.below, below)
	p.pending = true
	if p.running {
		return
	}
	p.running = c.goTracked(c.runProbeRounds)
}

// runProbeRounds runs probe rounds until none is asked for.
func (c *Client) runProbeRounds() {
	p := &c.probe
	for {
		p.mu.Lock()
		if !p.pending || c.isClosed() {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.pending = false
		below := p.below
		p.rounds++
		p.mu.Unlock()
		for _, s := range c.allSlots() {
			if sc := s.current(); sc != nil && sc.seq <= below && sc.checked.Load() < below {
				c.probeConn(sc, below)
			}
		}
	}
}

// allSlots returns every pooled connection slot of the client.
func (c *Client) allSlots() []*connSlot {
	return append(append(append([]*connSlot{}, c.pubSlots...), c.eventSlots...), c.cacheSlots...)
}

// probeConn authenticates a new stream on sc and ends it. A connection
// that answered is marked checked against resets up to below; one that
// was reset ends, and what it carried moves to a new one.
func (c *Client) probeConn(sc *slotConn, below uint64) {
	ctx, cancel := c.bind(context.Background(), false)
	defer cancel()
	ctx, cancelProbe := context.WithTimeout(ctx, resetProbeTimeout)
	defer cancelProbe()
	str, err := sc.conn.OpenStream() // never waits: a connection at its stream limit is busy, not quiet
	if err != nil {
		return
	}
	token, err := c.token(ctx)
	if err == nil {
		_, err = c.authenticate(ctx, str, wire.NewReader(str, c.opts.MaxFrameBytes), token)
	}
	if err != nil {
		abortStream(str)
		c.log.Debug("felix: connection probe after a stateless reset failed", "conn_seq", sc.seq,
			"err", err, "conn_ended", sc.conn.Context().Err() != nil)
		return
	}
	str.CancelRead(streamCodeCancel)
	_ = str.Close()
	for { // raise checked to below
		old := sc.checked.Load()
		if old >= below || sc.checked.CompareAndSwap(old, below) {
			return
		}
	}
}
