//go:build unix

package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The start warns when over half of the open-files limit is in use (each
// durable log holds its files), and is quiet below that.
func TestWarnOpenFiles(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnOpenFiles(log, 512, 1024)
	if buf.Len() != 0 {
		t.Fatalf("warned at half the limit: %s", buf.String())
	}
	warnOpenFiles(log, 10014, 20000)
	if got := buf.String(); !strings.Contains(got, "over half of the open-files limit in use") ||
		!strings.Contains(got, "open_files=10014 limit=20000") || !strings.Contains(got, "LimitNOFILE") {
		t.Fatalf("warning: %s", got)
	}
}
