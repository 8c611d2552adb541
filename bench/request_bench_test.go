package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
)

// checkRequestRun fails unless res answered every measured request with
// its echo and measured each one.
func checkRequestRun(t *testing.T, res RequestResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v (result %+v)", res.Target, err, res)
	}
	c := res.Config
	if res.Requests != int64(c.Total) || res.Errors != 0 || res.BadReplies != 0 || res.Latency.Count != int64(c.Total) ||
		res.PerSec <= 0 || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P50 {
		t.Fatalf("%s: %+v", res.Target, res)
	}
	t.Logf("%s conc=%d: %.0f req/s, %v", res.Target, c.Concurrency, res.PerSec, res.Latency)
}

func TestRequestFelixEmbedded(t *testing.T) {
	fb, err := StartEmbeddedFelix(broker.Options{QueuePolicy: broker.Block}, "default/default/bench")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fb.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	var results []RequestResult
	for _, conc := range []int{1, 8} {
		tgt := &FelixRequestTarget{Addr: fb.Addr, TLS: fb.TLS}
		res, err := RunRequest(ctx, tgt, RequestConfig{Concurrency: conc, PayloadSize: 64, Total: 300, Warmup: 30, Timeout: time.Minute})
		checkRequestRun(t, res, err)
		results = append(results, res)
	}
	out := FormatRows(RequestRows(results), RequestNotes(results))
	for _, want := range []string{"conc=1 payload=64", "conc=8 payload=64", "req/s", "Client.Serve"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []RequestConfig{{Concurrency: -1}, {PayloadSize: -1}, {Total: -5}, {Warmup: -1}} {
		if _, err := RunRequest(ctx, &FelixRequestTarget{Addr: fb.Addr, TLS: fb.TLS}, bad); err == nil {
			t.Errorf("RunRequest accepted %+v", bad)
		}
	}
}

func TestRequestNATS(t *testing.T) {
	ctx := context.Background()
	url, stop, err := StartNATS(ctx, NATSServerOptions{})
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	for _, conc := range []int{1, 8} {
		res, err := RunRequest(ctx, &NATSRequestTarget{URL: url},
			RequestConfig{Concurrency: conc, PayloadSize: 64, Total: 300, Warmup: 30, Timeout: time.Minute})
		checkRequestRun(t, res, err)
	}
}
