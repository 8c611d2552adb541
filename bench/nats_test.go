package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// startNATSOrSkip starts a private nats-server, or skips when none is
// installed.
func startNATSOrSkip(t *testing.T, opts NATSServerOptions) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	url, stop, err := StartNATS(ctx, opts)
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return url
}

func TestNATSTargetPubSub(t *testing.T) {
	url := startNATSOrSkip(t, NATSServerOptions{})
	ctx := context.Background()
	for _, tgt := range []*NATSTarget{{URL: url}, {URL: url, SharedConn: true}} {
		cfg := PubSubConfig{Fanout: 3, Warmup: 100, Total: 1000, Rate: 5000}
		res, err := RunPubSub(ctx, tgt, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.Invalid != 0 {
			t.Errorf("%s: lost %d dups %d ooo %d invalid %d", tgt.Name(), res.Lost, res.Duplicates, res.OutOfOrder, res.Invalid)
		}
		if res.Delivered != 3300 || res.Latency.Count != 3000 {
			t.Errorf("%s: delivered %d latency count %d", tgt.Name(), res.Delivered, res.Latency.Count)
		}
		if n, err := tgt.AsyncErrors(); n != 0 {
			t.Errorf("%s: %d async errors, last %v", tgt.Name(), n, err)
		}
		t.Logf("%s: %v", tgt.Name(), res.Latency)
	}
	// Throughput mode with batches.
	res, err := RunPubSub(ctx, &NATSTarget{URL: url}, PubSubConfig{Fanout: 2, Total: 20000, Batch: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.DeliveredMsgsPerSec <= 0 {
		t.Errorf("throughput: lost %d, %.0f msg/s", res.Lost, res.DeliveredMsgsPerSec)
	}
}

func TestNATSTargetUnreachable(t *testing.T) {
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	tgt := &NATSTarget{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	_, err = RunPubSub(context.Background(), tgt, PubSubConfig{Total: 1})
	if err == nil || !strings.Contains(err.Error(), "scripts/peers.sh start nats") {
		t.Fatalf("err = %v, want a hint to start nats", err)
	}
}

func TestStartNATSJetStreamUsesAndRemovesTempStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	before, _ := os.ReadDir(os.TempDir())
	url, stop, err := StartNATS(ctx, NATSServerOptions{JetStream: true})
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Errorf("url %q", url)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	after, _ := os.ReadDir(os.TempDir())
	if count(after, "felix-bench-nats-js-") > count(before, "felix-bench-nats-js-") {
		t.Error("JetStream temp store left behind")
	}
}

func TestMissingPeerBinaryNamesInstallScript(t *testing.T) {
	_, err := findPeerBinary("", "FELIX_TEST_NO_SUCH_ENV", "felix-no-such-peer-server")
	if !errors.Is(err, ErrPeerNotInstalled) || !strings.Contains(err.Error(), "scripts/peers.sh install") {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := StartNATS(context.Background(), NATSServerOptions{Binary: "/nonexistent/nats-server"}); err == nil {
		t.Fatal("nonexistent binary accepted")
	}
}

func count(entries []os.DirEntry, prefix string) int {
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n
}
