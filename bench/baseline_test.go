package bench

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestBaselineReport measures the peers side by side and prints the table:
// NATS and the quic-go relay at fanout 1 and 10, and the quic-go echo. The
// quic-go peer runs in this process.
// It runs only with FELIX_BENCH_BASELINE=1 (scripts/bench-baseline.sh):
// a measurement, not a test. FELIX_NATS_URL uses a running nats instead of
// starting one; FELIX_BENCH_ROUNDS=N repeats the cases; FELIX_BENCH_PACING=adaptive|sleep|spin sets PubSubConfig.Pacing;
// FELIX_BENCH_JSON=FILE also writes the JSON report.
func TestBaselineReport(t *testing.T) {
	if os.Getenv("FELIX_BENCH_BASELINE") != "1" {
		t.Skip("measurement only: set FELIX_BENCH_BASELINE=1 (scripts/bench-baseline.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	natsURL := os.Getenv("FELIX_NATS_URL")
	if natsURL == "" {
		url, stop, err := StartNATS(ctx, NATSServerOptions{})
		if errors.Is(err, ErrPeerNotInstalled) {
			t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = stop() }()
		natsURL = url
	}
	echoAddr, stopEcho, err := StartQUICPeer(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopEcho()

	base := PubSubConfig{PayloadSize: 256, Rate: 10_000, Total: 20_000, Warmup: 2_000}
	if s := os.Getenv("FELIX_BENCH_PACING"); s != "" {
		if err := base.Pacing.UnmarshalText([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	var results []PubSubResult
	run := func(r PubSubResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	rounds := 1
	if s := os.Getenv("FELIX_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 20 {
			t.Fatalf("FELIX_BENCH_ROUNDS=%q: want 1..20", s)
		}
		rounds = n
	}
	for range rounds {
		for _, fanout := range []int{1, 10} {
			cfg := base
			cfg.Fanout = fanout
			run(RunPubSub(ctx, &NATSTarget{URL: natsURL}, cfg))
			run(RunPubSub(ctx, &QUICRelayTarget{Addr: echoAddr}, cfg))
		}
		run(RunQUICEcho(ctx, echoAddr, base))
	}

	t.Logf("\n%s", Table{Baseline: "nats"}.Format(results))
	for _, r := range results {
		t.Logf("%s fanout %d:\n  uncorrected %v\n  send lag    %v\n  published %.0f msg/s", r.Target, r.Config.Fanout, r.UncorrectedLatency, r.SendLag, r.PublishedMsgsPerSec)
	}
	if path := os.Getenv("FELIX_BENCH_JSON"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := WriteJSON(f, results); err != nil {
			t.Fatal(err)
		}
	}
}
