package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// A FELIX_* variable that no command reads (a typo) is named in a
// warning; the variables of serve's flags, of the client commands' flags,
// the reference broker's names and the helpers' are not, nor are other
// programs' variables.
func TestUnknownEnvNamesTypos(t *testing.T) {
	environ := []string{
		"FELIX_QUEUE_POLICY=block",          // serve flag
		"FELIX_ADDR=127.0.0.1:5000",         // client commands' flag
		"FELIX_GROUP=workers",               // queue commands' flag
		"FELIX_SUB_QUEUE_POLICY=DropNew",    // reference broker's name
		"FELIX_NATS_SERVER=/usr/bin/nats",   // bench peer
		"FELIX_QUEUE_POLCY=block",           // typo
		"FELIX_RETENTON_BYTES=1",            // typo
		"FELIX_QUEUE_POLCY=drop_old",        // the same typo twice: named once
		"FELIXQUEUE_POLICY=block",           // not FELIX_
		"PATH=/usr/bin", "HOME=/root", "=x", // others
	}
	got := unknownEnv(newRootCmd(), environ)
	want := []string{"FELIX_QUEUE_POLCY", "FELIX_RETENTON_BYTES"}
	if !slices.Equal(got, want) {
		t.Fatalf("unknownEnv = %v, want %v", got, want)
	}

	var buf bytes.Buffer
	reportUnknownEnv(slog.New(slog.NewTextHandler(&buf, nil)), newRootCmd(), environ)
	out := buf.String()
	if strings.Count(out, "level=WARN") != 2 || !strings.Contains(out, "name=FELIX_QUEUE_POLCY") || !strings.Contains(out, "name=FELIX_RETENTON_BYTES") {
		t.Errorf("warnings:\n%s", out)
	}
}
