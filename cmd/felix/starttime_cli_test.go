package main

import (
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

func TestParseFrom(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want wire.StartPosition
	}{
		{"", wire.StartPosition{Kind: wire.StartLatest}},
		{"latest", wire.StartPosition{Kind: wire.StartLatest}},
		{"earliest", wire.StartPosition{Kind: wire.StartEarliest}},
		{"0", wire.StartPosition{Kind: wire.StartOffset}},
		{"1234", wire.StartPosition{Kind: wire.StartOffset, Offset: 1234}},
		{"2026-11-30T10:00:00Z", wire.StartAt(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))},
		{"2026-11-30T11:00:00+01:00", wire.StartAt(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))},
		{"2026-11-30T10:00:00.250Z", wire.StartAt(time.Date(2026, 11, 30, 10, 0, 0, 250e6, time.UTC))},
		{"-5m", wire.StartAt(now.Add(-5 * time.Minute))},
		{"-1h30m", wire.StartAt(now.Add(-90 * time.Minute))},
		{"-1500ms", wire.StartAt(now.Add(-1500 * time.Millisecond))},
	} {
		got, err := parseFrom(c.in, now)
		if err != nil || got != c.want {
			t.Errorf("parseFrom(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"5m", "-0s", "+5m", "-5", "yesterday", "2026-13-01T00:00:00Z", "2026-11-30 10:00:00", "Earliest", "-1"} {
		if got, err := parseFrom(in, now); err == nil {
			t.Errorf("parseFrom(%q) = %+v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "--from") {
			t.Errorf("parseFrom(%q): %v does not name the flag", in, err)
		}
	}
}

// felix sub --from with a time: before the stream's events (all of them),
// a duration back from now (events published just now), and in the
// future (only what is published next). The broker runs on the real
// clock, so the tests pick times well clear of the publishes.
func TestSubFromTimeCLI(t *testing.T) {
	addr, b, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	if out, err := runCLI(t, append([]string{"pub", "demo", "one", "two", "three"}, conn...)...); err != nil {
		t.Fatalf("pub: %v %s", err, out)
	}
	type result struct {
		out string
		err error
	}
	future := make(chan result, 1)
	go func() {
		out, err := runCLI(t, append([]string{"sub", "demo", "--from", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--count", "1"}, conn...)...)
		future <- result{out, err}
	}()
	waitSubscribed(t, b, "default", "default", "demo", 1)
	if out, err := runCLI(t, append([]string{"pub", "demo", "four"}, conn...)...); err != nil {
		t.Fatalf("pub: %v %s", err, out)
	}
	if r := <-future; r.err != nil || r.out != "four\n" {
		t.Fatalf("sub --from a future time: %q %v", r.out, r.err)
	}
	for _, from := range []string{"2000-01-01T00:00:00Z", "-1h", "earliest"} {
		out, err := runCLI(t, append([]string{"sub", "demo", "--from", from, "--count", "4"}, conn...)...)
		if err != nil || out != "one\ntwo\nthree\nfour\n" {
			t.Fatalf("sub --from %s: %q %v", from, out, err)
		}
	}
	if _, err := runCLI(t, append([]string{"sub", "demo", "--from", "5m"}, conn...)...); err == nil || !strings.Contains(err.Error(), "write it negative") {
		t.Fatalf("sub --from 5m: %v", err)
	}
	out, err := runCLI(t, "sub", "--help")
	if err != nil || !strings.Contains(out, "RFC 3339") || !strings.Contains(out, "-5m") {
		t.Fatalf("sub --help does not document times: %v\n%s", err, out)
	}
}
