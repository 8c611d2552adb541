package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/bench"
)

// TestQUICPeerProcess runs the raw quic-go peer as `felix bench quic-peer`,
// the child --compare quic starts, drives its echo and relay, and stops it
// by PID: afterwards nothing answers on its address.
func TestQUICPeerProcess(t *testing.T) {
	bin := buildFelix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, stop, err := bench.StartQUICPeerProcess(ctx, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	cfg := bench.PubSubConfig{Warmup: 20, Total: 300, Rate: 3000}
	echo, err := bench.RunQUICEcho(ctx, addr, cfg)
	if err != nil || echo.Lost != 0 || echo.Latency.Count != 300 {
		t.Fatalf("echo: %v, lost %d, samples %d", err, echo.Lost, echo.Latency.Count)
	}
	cfg.Fanout = 3
	relay, err := bench.RunPubSub(ctx, &bench.QUICRelayTarget{Addr: addr}, cfg)
	if err != nil || relay.Lost != 0 || relay.OutOfOrder != 0 || relay.Latency.Count != 900 {
		t.Fatalf("relay: %v, lost %d, out of order %d, samples %d", err, relay.Lost, relay.OutOfOrder, relay.Latency.Count)
	}
	stopped = true
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	defer dcancel()
	if _, err := bench.RunQUICEcho(dctx, addr, bench.PubSubConfig{Total: 1, Timeout: time.Second}); err == nil {
		t.Fatal("the peer still answers after stop")
	}
}

// TestQUICPeerProcessNotFelix: a binary that prints no address is reported,
// not waited on forever.
func TestQUICPeerProcessNotFelix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := bench.StartQUICPeerProcess(ctx, "/bin/true", nil); err == nil {
		t.Fatal("/bin/true accepted as the quic peer")
	}
}
