package bench

import (
	"context"
	"testing"
	"time"
)

func TestQUICEchoRoundTrip(t *testing.T) {
	ctx, addr := startTestQUICPeer(t, 30*time.Second)

	for _, cfg := range []PubSubConfig{
		{Warmup: 50, Total: 500, Rate: 5000},        // paced, single messages
		{Total: 2000, Batch: 16, PayloadSize: 1024}, // as fast as possible, batched
	} {
		res, err := RunQUICEcho(ctx, addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Target != QUICEchoName {
			t.Errorf("target %q", res.Target)
		}
		if res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.Invalid != 0 {
			t.Errorf("%+v: lost %d dups %d ooo %d invalid %d", cfg, res.Lost, res.Duplicates, res.OutOfOrder, res.Invalid)
		}
		if res.Latency.Count != int64(cfg.Total) || res.Latency.P50 <= 0 {
			t.Errorf("%+v: latency %v", cfg, res.Latency)
		}
		t.Logf("%+v: %v", cfg, res.Latency)
	}
	if _, err := RunQUICEcho(ctx, addr, PubSubConfig{Fanout: 2}); err == nil {
		t.Error("fanout 2 accepted by the echo")
	}
}

// startTestQUICPeer starts an in-process quic-go peer that stops when the
// test ends, and a context bounding the test by timeout.
func startTestQUICPeer(t *testing.T, timeout time.Duration) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	addr, stop, err := StartQUICPeer(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ctx, addr
}

func TestQUICEchoStopIsIdempotentAndFollowsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, stop, err := StartQUICPeer(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancel() // the server shuts down with its context
	stop()
	stop()
	dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
	defer dcancel()
	if _, err := RunQUICEcho(dctx, addr, PubSubConfig{Total: 1, Timeout: time.Second}); err == nil {
		t.Fatal("echo still answering after stop")
	}
}
