package main

import (
	"strings"
	"testing"
)

// felix cache expire KEY SECONDS refuses every count of seconds that is
// not positive, also one so negative that it wraps around when turned
// into nanoseconds (-18446744073 s × 10⁹ is +709 ms modulo 2⁶⁴): the key
// keeps its expiry (none), rather than expiring in 709 ms or in 292
// years; a huge positive count is cut to 100 years as documented.
func TestHunt13ExpireSecondsDoNotWrapAround(t *testing.T) {
	addr, _, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	if _, err := runCLI(t, append([]string{"cache", "put", "session", "x"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	for _, secs := range []string{"-18446744073", "-9223372037", "-27670116111", "-9223372036854775808"} {
		args := append(append([]string{"cache", "expire"}, conn...), "--", "session", secs)
		out, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), "invalid TTL") {
			t.Errorf("expire session %s: %q %v, want refused", secs, out, err)
		}
		if out, err := runCLI(t, append([]string{"cache", "ttl", "session"}, conn...)...); err != nil || out != "-1\n" {
			t.Fatalf("ttl of session after expire %s: %q %v, want -1 (no expiry)", secs, out, err)
		}
	}
	if out, err := runCLI(t, append([]string{"cache", "expire", "session", "9223372036854775807"}, conn...)...); err != nil || out != "1\n" {
		t.Fatalf("expire with a huge count of seconds: %q %v", out, err)
	}
	if out, err := runCLI(t, append([]string{"cache", "ttl", "session"}, conn...)...); err != nil || !strings.HasPrefix(out, "876000h") && !strings.HasPrefix(out, "875999h") {
		t.Fatalf("ttl after a huge expire: %q %v, want 100 years", out, err)
	}
}
