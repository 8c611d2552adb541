package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// runDemo runs demo name quickly against an embedded broker and returns
// its output; it fails the test when the demo fails.
func runDemo(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, name, &out, Options{Quick: true}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	return out.String()
}

// wantLines fails unless out contains every claim.
func wantLines(t *testing.T, out string, claims ...string) {
	t.Helper()
	for _, c := range claims {
		if !strings.Contains(out, c) {
			t.Errorf("output lacks %q", c)
		}
	}
	if strings.Contains(out, "[FAIL]") {
		t.Errorf("output has a failed claim")
	}
}

func TestSimple(t *testing.T) {
	out := runDemo(t, "simple")
	wantLines(t, out,
		"1. Started a Felix broker",
		"Subscribe response: subscribed",
		`event 1: "hello"`, `event 2: "world"`,
		"[ok]   received 2/2 events, in the order they were published",
		"Demo complete: all 1 claims hold")
}

func TestCache(t *testing.T) {
	out := runDemo(t, "cache")
	wantLines(t, out,
		"[ok]   get of a stored key is a hit with the stored value",
		"[ok]   get of an absent key is a miss",
		"[ok]   the remaining TTL is between 0 and 400ms",
		"[ok]   after the TTL, get is a miss and the TTL read finds no entry",
		"[ok]   a write based on a stale version is refused (no lost update)",
		"[ok]   the counter is 8 after two decrements from 10",
		"4096 B   get miss",
		"Demo complete")
}

func TestUnknownDemo(t *testing.T) {
	err := Run(context.Background(), "nope", &bytes.Buffer{}, Options{})
	var ue *UnknownError
	if !errors.As(err, &ue) || ue.Name != "nope" || !strings.Contains(err.Error(), "simple") {
		t.Fatalf("err = %v", err)
	}
}

func TestOrders(t *testing.T) {
	out := runDemo(t, "orders")
	wantLines(t, out,
		"crashed holding orders",
		"[ok]   59 of 59 valid orders acknowledged exactly once (0 twice, 0 lost)",
		"[ok]   5/5 orders stranded by the crash were redelivered to surviving workers",
		"[ok]   the poison order 59 was dead-lettered to orders/created.dlq after 3 attempts",
		"Demo complete")
}

func TestNotifications(t *testing.T) {
	out := runDemo(t, "notifications")
	wantLines(t, out,
		"[ok]   tenant acme: 3/3 dashboards received all 400 alerts in order, 0 lost, 0 from another tenant",
		"[ok]   tenant globex: 3/3 dashboards received all 400 alerts in order, 0 lost, 0 from another tenant",
		"[ok]   every publish was acknowledged without waiting for the stalled subscriber",
		"= 400 published (the drops are gaps in the sequence, the rest in order)",
		"[ok]   the broker counted the pager's",
		"drops exactly, and 0 for everyone else",
		"[ok]   tenant acme: the cache holds its 5 latest alerts, 396–400",
		"[ok]   tenant globex: the cache holds its 5 latest alerts, 396–400",
		"Demo complete")
}

func TestLatency(t *testing.T) {
	out := runDemo(t, "latency")
	wantLines(t, out,
		"Running 16 cases",
		"     10    64  4096 B |",
		"[ok]   16/16 cases delivered every message to every subscriber: 0 lost, 0 duplicated, 0 out of order",
		"Demo complete")
}
