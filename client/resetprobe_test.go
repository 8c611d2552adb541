package client

import (
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/internal/testwait"
)

// probeRoundsDone reports whether the client ran at least n probe rounds
// and none is running.
func probeRoundsDone(c *Client, n uint64) func() bool {
	return func() bool {
		c.probe.mu.Lock()
		defer c.probe.mu.Unlock()
		return c.probe.rounds >= n && !c.probe.running
	}
}

// A probe round (what a stateless reset on one connection starts) on
// connections that are alive leaves them alive: each answers its probe,
// is marked checked, nothing is reported lost, the broker counts no
// protocol error, and the subscription on the probed event connection
// and the publish connection go on working.
func TestResetProbeKeepsLiveConnections(t *testing.T) {
	b := startBroker(t)
	var lost atomic.Int64
	c := dial(t, b, Options{OnDisconnect: func(ConnEvent) { lost.Add(1) }})
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var live []*slotConn
	for _, s := range c.allSlots() {
		if sc := s.current(); sc != nil {
			live = append(live, sc)
		}
	}
	if len(live) < 2 {
		t.Fatalf("%d live connections before the probe, want the publish and event ones", len(live))
	}

	bound := c.probe.seq.Load()
	c.probeAfterReset(bound)
	testwait.Eventually(t, "the probe round ends", probeRoundsDone(c, 1))
	for _, sc := range live {
		if got := sc.checked.Load(); got != bound {
			t.Errorf("connection %d: checked %d after the probe, want %d", sc.seq, got, bound)
		}
		if sc.conn.Context().Err() != nil {
			t.Errorf("connection %d ended by its probe: %v", sc.seq, sc.conn.Context().Err())
		}
	}
	if err := c.Publish(ctx, "default", "demo", []byte("after the probe")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"after the probe"})
	if n := lost.Load(); n != 0 {
		t.Errorf("%d connections reported lost after probing live ones", n)
	}
	if n := b.Server.Stats().ProtocolErrors.Load(); n != 0 {
		t.Errorf("the broker counted %d protocol errors for the probes", n)
	}

}
