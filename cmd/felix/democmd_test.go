package main

import (
	"strings"
	"testing"
)

// runDemoCmd runs `felix demo args...` and returns its output and error.
func runDemoCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, append([]string{"demo"}, args...)...)
}

func TestDemoSimpleEmbedded(t *testing.T) {
	out, err := runDemoCmd(t, "simple", "--quick")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Started a Felix broker in this process", `event 2: "world"`,
		"[ok]   received 2/2 events", "Demo complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoAgainstExternalBroker(t *testing.T) {
	addr, _, ca := startServe(t)
	out, err := runDemoCmd(t, "simple", "--addr", addr, "--ca-file", ca)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Using the external broker at "+addr) || !strings.Contains(out, "[ok]   received 2/2 events") {
		t.Fatalf("output:\n%s", out)
	}
	// The development broker lacks the orders demo's streams: the demo
	// says what it needs and fails.
	out, err = runDemoCmd(t, "orders", "--addr", addr, "--ca-file", ca, "--quick")
	if err == nil || !strings.Contains(out, "--durable-stream shop/orders/created") || !strings.Contains(out, "Demo stopped") {
		t.Fatalf("err = %v, output:\n%s", err, out)
	}
}

func TestDemoUnknown(t *testing.T) {
	if _, err := runDemoCmd(t, "nope"); err == nil || !strings.Contains(err.Error(), "notifications") {
		t.Fatalf("err = %v", err)
	}
	if _, err := runDemoCmd(t); err == nil {
		t.Fatal("no demo name: want an error")
	}
}

// The notifications demo against a broker declared with the flags it
// prints.
func TestDemoNotificationsExternal(t *testing.T) {
	addr, _, ca := startServe(t, "--stream", "acme/ops/alerts,globex/ops/alerts",
		"--cache", "acme/ops/recent,globex/ops/recent", "--queue-policy", "drop_new", "--queue-capacity", "128")
	out, err := runDemoCmd(t, "notifications", "--addr", addr, "--ca-file", ca, "--quick")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"felix serve --stream acme/ops/alerts --stream globex/ops/alerts --cache acme/ops/recent",
		"[ok]   tenant globex: 3/3 dashboards received all 500 alerts in order", "Demo complete"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A demo that stops on an SDK error (the orders demo against a broker
// without its streams: "felix: server: stream not found", wrapped with
// the demo's context) fails with a line that says felix once, not
// "felix: demo orders: ...: felix: server: ...".
func TestDemoErrorLineSaysFelixOnce(t *testing.T) {
	addr, _, ca := startServe(t)
	out, err := runDemoCmd(t, "orders", "--addr", addr, "--ca-file", ca, "--quick")
	if err == nil {
		t.Fatalf("orders against the development broker: no error\n%s", out)
	}
	line := errorLine(err)
	if !strings.HasPrefix(line, "felix: demo orders: ") || strings.Count(line, "felix:") != 1 || !strings.Contains(line, "server: stream not found") {
		t.Fatalf("error line %q: want felix: once, in front", line)
	}
}
