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

func TestLogRepairCLI(t *testing.T) {
	dir := writeTestLog(t, 40)
	if out, err := runCLI(t, "log", "repair", dir); err != nil || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("repair of a good log: %v\n%s", err, out)
	}
	ents, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	flip := func(file string) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b[32+24] ^= 1 // a payload bit of the segment's first record
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	active := ents[len(ents)-1]
	rep, err := commitlog.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := rep.Segments[len(rep.Segments)-1].Base
	flip(active)
	before, _ := os.ReadFile(active)

	out, err := runCLI(t, "log", "repair", dir)
	if err == nil || !strings.Contains(out, "would truncate "+filepath.Base(active)+" at byte 32") {
		t.Fatalf("repair without --yes: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(active); string(after) != string(before) {
		t.Fatal("repair without --yes changed the segment")
	}
	out, err = runCLI(t, "log", "repair", dir, "--yes")
	if err != nil || !strings.Contains(out, fmt.Sprintf("offsets [0, %d): ok", base)) {
		t.Fatalf("repair --yes: %v\n%s", err, out)
	}
	if _, err := commitlog.Verify(dir); err != nil {
		t.Fatalf("verify after the repair: %v", err)
	}

	// A sealed segment is not the repair's to cut.
	dir = writeTestLog(t, 40)
	ents, _ = filepath.Glob(filepath.Join(dir, "*.log"))
	flip(ents[0])
	if out, err := runCLI(t, "log", "repair", dir, "--yes"); err == nil || !strings.Contains(err.Error(), "only the active segment") {
		t.Fatalf("repair of a sealed segment: %v\n%s", err, out)
	}
}
