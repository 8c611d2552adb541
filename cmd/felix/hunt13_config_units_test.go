package main

import (
	"strings"
	"testing"
)

// A reference variable or key counted in seconds, milliseconds or
// microseconds that does not fit a duration is refused naming it, never
// wrapped around modulo 2⁶⁴ into another duration: 18446744074 seconds of
// FELIX_DURABLE_RETENTION_SECONDS would otherwise be a retention age of
// 290 ms, deleting a durable stream's records as they are written.
func TestHunt13ReferenceUnitsDoNotWrapAround(t *testing.T) {
	for _, c := range []struct{ env, value string }{
		{"FELIX_DURABLE_RETENTION_SECONDS", "18446744074"},
		{"FELIX_DURABLE_RETENTION_SECONDS", "-18446744073"},
		{"FELIX_SHUTDOWN_DRAIN_TIMEOUT_MS", "18446744073710"},
		{"FELIX_EVENT_BATCH_MAX_DELAY_US", "18446744073709552"},
	} {
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			out, err := runCLI(t, "serve", "--print-config")
			if err == nil || !strings.Contains(err.Error(), c.env) {
				t.Fatalf("%s=%s: %v, want refused naming it; effective:\n%s", c.env, c.value, err, grepLines(out, "retention_age", "shutdown_timeout", "event_batch_max_delay"))
			}
		})
	}
	cfg := writeConfig(t, "shutdown_drain_timeout_ms: 18446744073710\n")
	if out, err := runCLI(t, "serve", "--print-config", "--config", cfg); err == nil || !strings.Contains(err.Error(), "shutdown_drain_timeout_ms") {
		t.Fatalf("shutdown_drain_timeout_ms out of range: %v\n%s", err, grepLines(out, "shutdown_timeout"))
	}
	// In range, the units still apply.
	t.Setenv("FELIX_DURABLE_RETENTION_SECONDS", "9223372036")
	if m, _ := effective(t); m["retention_age"] != "2562047h47m16s" {
		t.Fatalf("retention_age %v for 9223372036 s", m["retention_age"])
	}
}

// grepLines returns the lines of s that contain one of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
