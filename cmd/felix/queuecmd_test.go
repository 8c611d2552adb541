package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
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
	// Deleting the group forgets its acks: consuming again starts at a.
	if out, err := runCLI(t, append([]string{"queue", "delete", "jobs", "-g", "w"}, conn...)...); err != nil || out != "deleted group w of jobs\n" {
		t.Fatalf("delete: %q %v", out, err)
	}
	if _, err := runCLI(t, append([]string{"queue", "delete", "jobs", "-g", "w"}, conn...)...); err == nil ||
		!strings.Contains(err.Error(), "queue group not found") {
		t.Fatalf("deleting it again: %v, want queue group not found", err)
	}
	if out, err := runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--count", "1"}, conn...)...); err != nil ||
		out != "offset=0 attempt=1 a\n" {
		t.Fatalf("consume after delete: %q %v", out, err)
	}
}

// `queue consume --count 1`, run once per record, sees each record at its
// first attempt: the records the broker had already sent beyond the count
// (prefetch) are released when the command leaves, so they are not
// dead-lettered unseen after a few runs.
func TestQueueCLICountDoesNotBurnAttempts(t *testing.T) {
	addr, _, ca := startServe(t, "--durable-stream", "default/default/jobs", "--queue-max-attempts", "3")
	conn := []string{"--addr", addr, "--ca-file", ca}
	if out, err := runCLI(t, append([]string{"pub", "jobs", "a", "b", "c", "d", "e"}, conn...)...); err != nil {
		t.Fatalf("pub: %v %s", err, out)
	}
	for i, want := range []string{"a", "b", "c", "d", "e"} {
		out, err := runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--count", "1", "--idle-exit", "2s"}, conn...)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "attempt=1 "+want) {
			t.Fatalf("run %d printed %q, want %q at attempt 1", i+1, out, want)
		}
	}
}

// --queue-max-attempts -1 never dead-letters, and the backoff flags set the
// redelivery delay after an ack timeout: a record nobody acks comes back
// far more often than the default 5 attempts (whose 1s..16s backoff would
// also take over 30 s to reach attempt 8).
func TestQueueUnlimitedAttemptsAndBackoffFlags(t *testing.T) {
	addr, _, ca := startServe(t, "--durable-stream", "default/default/jobs", "--queue-max-attempts", "-1",
		"--queue-ack-timeout", "100ms", "--queue-backoff-min", "20ms", "--queue-backoff-max", "40ms")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish(ctx, "default", "jobs", []byte("stuck")); err != nil {
		t.Fatal(err)
	}
	co, err := c.Consumer(ctx, "default", "jobs", "w")
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	for want := 1; want <= 8; want++ {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for attempt %d: %v", want, err)
		}
		if m.Attempt != want || string(m.Payload) != "stuck" {
			t.Fatalf("got attempt %d of %q, want attempt %d of the one record", m.Attempt, m.Payload, want)
		}
	}
}
