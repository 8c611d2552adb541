package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Each demo runs quickly against an embedded broker; its output must state
// its claims, all [ok].
func TestDemos(t *testing.T) {
	cases := []struct {
		name   string
		claims []string
	}{
		{"simple", []string{
			"1. Started a Felix broker",
			"Subscribe response: subscribed",
			`event 1: "hello"`, `event 2: "world"`,
			"[ok]   received 2/2 events, in the order they were published",
			"Demo complete: all 1 claims hold",
		}},
		{"cache", []string{
			"[ok]   get of a stored key is a hit with the stored value",
			"[ok]   get of an absent key is a miss",
			"[ok]   the remaining TTL is between 0 and 400ms",
			"[ok]   after the TTL, get is a miss and the TTL read finds no entry",
			"[ok]   a write based on a stale version is refused (no lost update)",
			"[ok]   the counter is 8 after two decrements from 10",
			"4096 B   get miss",
		}},
		{"orders", []string{
			"crashed holding orders",
			"[ok]   59 of 59 valid orders acknowledged exactly once (0 twice, 0 lost)",
			"[ok]   5/5 orders stranded by the crash were redelivered to surviving workers",
			"[ok]   the poison order 59 was dead-lettered to orders/created.dlq after 3 attempts",
		}},
		{"notifications", []string{
			"[ok]   tenant acme: 3/3 dashboards received all 500 alerts in order, 0 lost, 0 from another tenant",
			"[ok]   tenant globex: 3/3 dashboards received all 500 alerts in order, 0 lost, 0 from another tenant",
			"[ok]   every publish was acknowledged without waiting for the stalled subscriber",
			"= 500 published (the drops are gaps in the sequence, the rest in order)",
			"[ok]   the broker counted the pager's",
			"drops exactly, and 0 for everyone else",
			"[ok]   tenant acme: the cache holds its 5 latest alerts, 496–500",
			"[ok]   tenant globex: the cache holds its 5 latest alerts, 496–500",
		}},
		{"latency", []string{
			"Running 16 cases",
			"     10    64  4096 B |",
			"[ok]   16/16 cases delivered every message to every subscriber: 0 lost, 0 duplicated, 0 out of order",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var buf bytes.Buffer
			if err := Run(ctx, c.name, &buf, Options{Quick: true}); err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			out := buf.String()
			for _, claim := range append(c.claims, "Demo complete") {
				if !strings.Contains(out, claim) {
					t.Errorf("output lacks %q", claim)
				}
			}
			if strings.Contains(out, "[FAIL]") {
				t.Errorf("a claim failed")
			}
			if t.Failed() || testing.Verbose() {
				t.Log("\n" + out)
			}
		})
	}
}

func TestUnknownDemo(t *testing.T) {
	err := Run(context.Background(), "nope", &bytes.Buffer{}, Options{})
	var ue *UnknownError
	if !errors.As(err, &ue) || ue.Name != "nope" || !strings.Contains(err.Error(), "simple") {
		t.Fatalf("err = %v", err)
	}
}

// A claim that does not hold is printed as [FAIL] and makes Run return a
// *ClaimError naming it.
func TestFailedClaim(t *testing.T) {
	demos["failing"] = entry{short: "test", run: func(_ context.Context, e *env) error {
		e.stepf("Checking.")
		e.check(true, "fine")
		e.check(false, "broken %d", 7)
		return nil
	}}
	defer delete(demos, "failing")
	var out bytes.Buffer
	err := Run(context.Background(), "failing", &out, Options{})
	var ce *ClaimError
	if !errors.As(err, &ce) || ce.Demo != "failing" || len(ce.Failed) != 1 || ce.Failed[0] != "broken 7" {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"1. Checking.", "[ok]   fine", "[FAIL] broken 7", "Demo FAILED: 1 of 2 claims did not hold"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
