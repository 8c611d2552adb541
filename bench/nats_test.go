package bench

import (
	"context"
	"crypto/tls"
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

// With TLS the server takes TLS 1.3 clients that trust its certificate and
// refuses plain ones; the target is lossless over it and names itself
// nats-tls; the certificate's temporary directory goes with stop.
func TestNATSTLSTarget(t *testing.T) {
	cert, pool, err := LoopbackCert()
	if err != nil {
		t.Fatal(err)
	}
	url, stop := startNATSWithTemp(t, NATSServerOptions{TLS: &cert}, "tls://", "felix-bench-nats-tls-")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	clientTLS := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}

	plain := &NATSTarget{URL: strings.Replace(url, "tls://", "nats://", 1)}
	if _, err := plain.connect("plain"); err == nil {
		t.Error("a client without TLS connected to the TLS server")
	}
	untrusting := &NATSTarget{URL: url, TLS: &tls.Config{MinVersion: tls.VersionTLS13}}
	if _, err := untrusting.connect("untrusting"); err == nil {
		t.Error("a client that does not trust the certificate connected")
	}

	for _, tgt := range []*NATSTarget{{URL: url, TLS: clientTLS}, {URL: url, TLS: clientTLS, SharedConn: true}} {
		want := map[bool]string{false: "nats-tls", true: "nats-tls-shared"}[tgt.SharedConn]
		if tgt.Name() != want {
			t.Errorf("name %q, want %q", tgt.Name(), want)
		}
		if err := tgt.Setup(ctx, 2, func(int, []byte) {}); err != nil {
			t.Fatal(err)
		}
		state, err := tgt.pub.TLSConnectionState()
		if err != nil || state.Version != tls.VersionTLS13 {
			t.Errorf("%s: TLS state %x, %v; want TLS 1.3", tgt.Name(), state.Version, err)
		}
		_ = tgt.Close()
		res, err := RunPubSub(ctx, tgt, PubSubConfig{Fanout: 2, Warmup: 100, Total: 1000, Rate: 5000})
		if err != nil {
			t.Fatal(err)
		}
		if res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.Delivered != 2200 {
			t.Errorf("%s: %+v", tgt.Name(), res)
		}
	}
	stop()
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
	_, stop := startNATSWithTemp(t, NATSServerOptions{JetStream: true}, "nats://", "felix-bench-nats-js-")
	stop()
}

// startNATSWithTemp starts a nats-server whose start makes a temporary
// directory named tempPrefix*, checks its URL's scheme, and returns a stop
// that stops it twice (the second a no-op) and checks the directory is
// gone. It skips when no nats-server is installed; a test that fails
// before calling stop still has the server stopped.
func startNATSWithTemp(t *testing.T, opts NATSServerOptions, scheme, tempPrefix string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	before, _ := os.ReadDir(os.TempDir())
	url, stopNATS, err := StartNATS(ctx, opts)
	if errors.Is(err, ErrPeerNotInstalled) {
		t.Skipf("nats-server is not installed (run scripts/peers.sh install): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopNATS() }) // if the test ends before stop
	if !strings.HasPrefix(url, scheme+"127.0.0.1:") {
		t.Errorf("url %q, want %s127.0.0.1:port", url, scheme)
	}
	return url, func() {
		t.Helper()
		if err := stopNATS(); err != nil {
			t.Fatal(err)
		}
		if err := stopNATS(); err != nil {
			t.Fatalf("second stop: %v", err)
		}
		after, _ := os.ReadDir(os.TempDir())
		if count(after, tempPrefix) > count(before, tempPrefix) {
			t.Errorf("temporary directory %s* left behind", tempPrefix)
		}
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
