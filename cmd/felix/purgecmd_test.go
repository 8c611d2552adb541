package main

import (
	"strings"
	"testing"
)

// `felix purge` asks for --yes, then removes what a durable stream holds:
// the group consuming it skips the purged records and the next record
// keeps its offset.
func TestPurgeCLI(t *testing.T) {
	addr, b, ca := startServe(t, "--durable-stream", "default/default/jobs")
	conn := []string{"--addr", addr, "--ca-file", ca}
	if _, err := runCLI(t, append([]string{"pub", "jobs", "a", "b", "c"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	// The group reads ahead: b and c were sent to this consumer and given
	// back when it left. The purge must not let them come again.
	if out, err := runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--count", "1"}, conn...)...); err != nil || out != "offset=0 attempt=1 a\n" {
		t.Fatalf("consume before the purge: %q %v", out, err)
	}
	if _, err := runCLI(t, append([]string{"purge", "jobs"}, conn...)...); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("purge without --yes: %v, want a refusal naming --yes", err)
	}
	st, err := b.Stream("default", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Stats(); got.Oldest != 0 {
		t.Fatalf("a refused purge removed events: oldest %d", got.Oldest)
	}
	out, err := runCLI(t, append([]string{"purge", "jobs", "--yes"}, conn...)...)
	if err != nil || out != "purged 3 events from jobs; the next event gets offset 3\n" {
		t.Fatalf("purge: %q %v", out, err)
	}
	if _, err := runCLI(t, append([]string{"pub", "jobs", "d"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--count", "1"}, conn...)...)
	if err != nil || out != "offset=3 attempt=1 d\n" {
		t.Fatalf("consume after the purge: %q %v", out, err)
	}
	if _, err := runCLI(t, append([]string{"purge", "nope", "--yes"}, conn...)...); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("purge of an unknown stream: %v", err)
	}
}

// `felix cache flush` asks for --yes, then empties the cache.
func TestCacheFlushCLI(t *testing.T) {
	addr, _, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	for _, k := range []string{"a", "b"} {
		if _, err := runCLI(t, append([]string{"cache", "put", k, "v"}, conn...)...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runCLI(t, append([]string{"cache", "flush"}, conn...)...); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("flush without --yes: %v, want a refusal naming --yes", err)
	}
	if out, err := runCLI(t, append([]string{"cache", "get", "a"}, conn...)...); err != nil || out != "v\n" {
		t.Fatalf("a refused flush removed a key: %q %v", out, err)
	}
	if out, err := runCLI(t, append([]string{"cache", "flush", "--yes"}, conn...)...); err != nil || out != "removed 2 entries\n" {
		t.Fatalf("flush: %q %v", out, err)
	}
	if out, err := runCLI(t, append([]string{"cache", "get", "a"}, conn...)...); err == nil {
		t.Fatalf("get after the flush: %q, want a miss", out)
	}
}

// `felix queue consume --group-start latest` creates the group at the
// stream's end: the records published before it are not the group's.
func TestQueueGroupStartCLI(t *testing.T) {
	addr, _, ca := startServe(t, "--durable-stream", "default/default/jobs")
	conn := []string{"--addr", addr, "--ca-file", ca}
	if _, err := runCLI(t, append([]string{"pub", "jobs", "a", "b"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--group-start", "soon"}, conn...)...); err == nil ||
		!strings.Contains(err.Error(), "--group-start") {
		t.Fatalf("a bad --group-start: %v", err)
	}
	out, err := runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--group-start", "latest", "--idle-exit", "500ms"}, conn...)...)
	if err != nil || out != "" {
		t.Fatalf("consume from latest before anything new: %q %v", out, err)
	}
	if _, err := runCLI(t, append([]string{"pub", "jobs", "c"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, append([]string{"queue", "consume", "jobs", "-g", "w", "--count", "1"}, conn...)...)
	if err != nil || out != "offset=2 attempt=1 c\n" {
		t.Fatalf("the group made at latest: %q %v", out, err)
	}
}
