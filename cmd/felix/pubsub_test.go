package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/syncbuf"
)

// startServe runs `felix serve` in-process on a free port.
func startServe(t *testing.T, extra ...string) (string, *broker.Broker, string) {
	t.Helper()
	addr, b, ca, stop := startServeDir(t, t.TempDir(), extra...)
	t.Cleanup(stop)
	return addr, b, ca
}

// startServeDir runs `felix serve` in-process on a free port with dataDir;
// stop ends it (SIGTERM-like drain) and may be called more than once.
func startServeDir(t *testing.T, dataDir string, extra ...string) (string, *broker.Broker, string, func()) {
	t.Helper()
	return startServeLogs(t, dataDir, &syncbuf.Buffer{}, extra...)
}

// startServeLogs is startServeDir writing the broker's log (warnings and
// errors) to logs.
func startServeLogs(t *testing.T, dataDir string, logs io.Writer, extra ...string) (string, *broker.Broker, string, func()) {
	t.Helper()
	ready := make(chan struct{})
	var addr string
	var b *broker.Broker
	cmd := newServeCmd()
	cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn", "--metrics-addr", "127.0.0.1:0", "--controlplane-addr", "off"}, extra...))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(logs)
	ctx, cancel := context.WithCancel(context.Background())
	serveReadyHook = func(a string, br *broker.Broker) { addr, b = a, br; close(ready) }
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	serveReadyHook = nil
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	return addr, b, filepath.Join(dataDir, "dev-cert.pem"), stop
}

func TestPubSubCLI(t *testing.T) {
	addr, b, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	type result struct {
		out string
		err error
	}
	subDone := make(chan result, 1)
	go func() {
		out, err := runCLI(t, append([]string{"sub", "demo", "--count", "3", "--json"}, conn...)...)
		subDone <- result{out, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s, _ := b.Stream("default", "default", "demo"); len(s.Subscriptions()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("subscription never registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if out, err := runCLI(t, append([]string{"pub", "demo", "one", "two", "three"}, conn...)...); err != nil {
		t.Fatalf("pub: %v %s", err, out)
	}
	r := <-subDone
	if r.err != nil {
		t.Fatalf("sub: %v", r.err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		var rec struct{ Payload, Stream string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, rec.Payload)
	}
	if strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("sub printed %q", r.out)
	}
	// Unknown stream is a clear error.
	if _, err := runCLI(t, append([]string{"pub", "nope", "x"}, conn...)...); err == nil ||
		!strings.Contains(err.Error(), "stream not found: tenant=default namespace=default stream=nope") {
		t.Fatalf("pub to unknown stream: %v", err)
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--queue-capacity", "-1"}, "--queue-capacity"},
		{[]string{"--queue-policy", "drop_all"}, "--queue-policy"},
		{[]string{"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, "--tls-cert"},
		{[]string{"--stream", "just-a-name"}, "--stream"},
		{[]string{"--cache", "a/b"}, "--cache"},
		{[]string{"--cache", "a/b/c:-5"}, "--cache"},
		{[]string{"--cache-max-bytes", "-1"}, "--cache-max-bytes"},
		{[]string{"--cache-max-total-bytes", "-1"}, "--cache-max-total-bytes"},
		{[]string{"--event-batch-max-delay", "1h"}, "--event-batch-max-delay"},
		{[]string{"--event-batch-max-delay", "-1ms"}, "--event-batch-max-delay"},
	} {
		_, err := runCLI(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-addr", "off", "--controlplane-addr", "off", "--data-dir", t.TempDir()}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want one naming %s", c.args, err, c.want)
		}
	}
}

// Durable streams survive a restart of `felix serve`, each with its own
// sync policy, and bad policies are refused naming the flag.
func TestServeDurableStreams(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCLI(t, "serve", "--listen", "127.0.0.1:0", "--metrics-addr", "off", "--controlplane-addr", "off", "--data-dir", dir, "--durable-stream", "a/b/c:sometimes"); err == nil ||
		!strings.Contains(err.Error(), "--durable-stream") {
		t.Fatalf("bad per-stream policy: %v", err)
	}
	for round := range 2 {
		addr, b, ca, stop := startServeDir(t, dir, "--durable-stream", "default/default/log:always", "--durable-stream", "default/default/fast")
		s, err := b.Stream("default", "default", "log")
		if err != nil || !s.IsDurable() || s.Tail() != uint64(round) {
			t.Fatalf("round %d: durable stream %v tail %d", round, err, s.Tail())
		}
		if out, err := runCLI(t, "pub", "log", "x", "--addr", addr, "--ca-file", ca); err != nil {
			t.Fatalf("pub: %v %s", err, out)
		}
		stop()
	}
}
