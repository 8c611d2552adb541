package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// writeTestLog writes n records "record i" in segments of 512 bytes.
func writeTestLog(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := commitlog.Open(dir, commitlog.Options{SegmentBytes: 512, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(context.Background(), [][]byte{fmt.Appendf(nil, "record %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLogVerifyCLI(t *testing.T) {
	dir := writeTestLog(t, 40)
	out, err := runCLI(t, "log", "verify", dir)
	if err != nil || !strings.Contains(out, "40 records, offsets [0, 40)") || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("verify of a good log: %v\n%s", err, out)
	}
	// Flip a payload bit in the first record of the second segment.
	ents, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	victim := ents[1]
	b, _ := os.ReadFile(victim)
	b[32+24] ^= 1
	os.WriteFile(victim, b, 0o644)
	out, err = runCLI(t, "log", "verify", dir)
	if err == nil || !strings.Contains(out, "CORRUPT: "+victim+" at byte 32: record checksum mismatch") {
		t.Fatalf("verify of a corrupt log: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "log", "verify", filepath.Join(dir, "missing")); err == nil {
		t.Fatal("verify of a missing directory succeeded")
	}
}

func TestLogDumpCLI(t *testing.T) {
	dir := writeTestLog(t, 10)
	out, err := runCLI(t, "log", "dump", dir, "--from", "7", "--count", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "offset=7 ") || !strings.HasSuffix(lines[1], `payload="record 8"`) {
		t.Fatalf("dump: %v\n%s", err, out)
	}
	out, err = runCLI(t, "log", "dump", dir, "--json")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 10 || !strings.Contains(lines[9], `"offset":9`) || !strings.Contains(lines[9], `"payload":"record 9"`) {
		t.Fatalf("dump --json: %v\n%s", err, out)
	}
}

func TestLogBenchCLI(t *testing.T) {
	tmp := t.TempDir()
	out, err := runCLI(t, "log", "bench", "--dir", tmp, "--duration", "20ms", "--writers", "1,4", "--sync", "always,never", "--segment-bytes", "65536")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	for _, want := range []string{"appends/fsync", "always        1", "always        4", "never        4", "always: 4 writers ack"} {
		if !strings.Contains(out, want) {
			t.Fatalf("bench output lacks %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("bench left %d logs behind", len(left))
	}
	if _, err := runCLI(t, "log", "bench", "--sync", "sometimes"); err == nil {
		t.Fatal("bench accepted an unknown sync policy")
	}
}
