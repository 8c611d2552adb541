package main

import (
	"strings"
	"testing"
)

func TestQueueCLI(t *testing.T) {
	addr, _, ca := startServe(t, "--durable-stream", "default/default/jobs")
	conn := []string{"--addr", addr, "--ca-file", ca}
	if _, err := runCLI(t, append([]string{"pub", "jobs", "a", "b", "c"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--count", "3"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	want := "offset=0 attempt=1 a\noffset=1 attempt=1 b\noffset=2 attempt=1 c\n"
	if out != want {
		t.Fatalf("consume printed %q, want %q", out, want)
	}
	out, err = runCLI(t, append([]string{"queue", "stats", "jobs", "-g", "w"}, conn...)...)
	if err != nil || !strings.Contains(out, "acked=3") || !strings.Contains(out, "lag=0") {
		t.Fatalf("stats: %q %v", out, err)
	}
	// Queue groups need a durable stream: a clear refusal.
	if _, err := runCLI(t, append([]string{"queue", "consume", "demo", "--count", "1"}, conn...)...); err == nil ||
		!strings.Contains(err.Error(), "queue groups need a log-backed stream") {
		t.Fatalf("consume on an in-memory stream: %v", err)
	}
}
