package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// A FELIX_* variable that no command reads (a typo, or the name of a
// flag that reads none: cache put's --ttl) is named in a warning; the
// variables of serve's flags, of the client commands' and the
// benchmarks' flags (a shared shell profile holds them), the reference
// broker's names and the helpers' are not, nor are other programs'
// variables.
func TestUnknownEnvNamesTypos(t *testing.T) {
	environ := []string{
		"FELIX_QUEUE_POLICY=block",          // serve flag
		"FELIX_ADDR=127.0.0.1:5000",         // client commands' flag
		"FELIX_GROUP=workers",               // queue commands' flag
		"FELIX_FANOUT=10",                   // bench pubsub's flag
		"FELIX_CHROMIUM=/usr/bin/chromium",  // scripts/chromium.sh and the browser tests
		"FELIX_TTL=60s",                     // cache put --ttl reads no variable
		"FELIX_YES=1",                       // nor does --yes
		"FELIX_SUB_QUEUE_POLICY=DropNew",    // reference broker's name
		"FELIX_NATS_SERVER=/usr/bin/nats",   // bench peer
		"FELIX_QUEUE_POLCY=block",           // typo
		"FELIX_RETENTON_BYTES=1",            // typo
		"FELIX_QUEUE_POLCY=drop_old",        // the same typo twice: named once
		"FELIXQUEUE_POLICY=block",           // not FELIX_
		"PATH=/usr/bin", "HOME=/root", "=x", // others
	}
	got := unknownEnv(newRootCmd(), environ)
	want := []string{"FELIX_QUEUE_POLCY", "FELIX_RETENTON_BYTES", "FELIX_TTL", "FELIX_YES"}
	if !slices.Equal(got, want) {
		t.Fatalf("unknownEnv = %v, want %v", got, want)
	}

	var buf bytes.Buffer
	reportUnknownEnv(slog.New(slog.NewTextHandler(&buf, nil)), newRootCmd(), environ)
	out := buf.String()
	if strings.Count(out, "level=WARN") != len(want) || !strings.Contains(out, "name=FELIX_QUEUE_POLCY") || !strings.Contains(out, "name=FELIX_RETENTON_BYTES") {
		t.Errorf("warnings:\n%s", out)
	}
}

// The other commands that read FELIX_* variables warn on stderr about
// those no command reads, as serve does, and go on: a typo in a client's
// environment (FELIX_ADRR) is not ignored in silence, while the variable
// of another command (bench pubsub's FELIX_FANOUT) is not warned about.
func TestCommandsWarnAboutUnknownEnv(t *testing.T) {
	t.Setenv("FELIX_ADRR", "127.0.0.1:1")
	t.Setenv("FELIX_TTL", "60s")
	t.Setenv("FELIX_FANOUT", "3")
	for _, tc := range []struct {
		args    []string
		failure string // the error the command goes on to
	}{
		{[]string{"bench", "pubsub", "--quiet", "--broker", "nowhere"}, "--broker"},
		{[]string{"request", "svc", "--timeout", "0s"}, "--timeout"},
	} {
		out, err := runCLI(t, tc.args...)
		name := tc.args[0]
		if err == nil || !strings.Contains(err.Error(), tc.failure) {
			t.Errorf("felix %s: %v, want the error about %s", name, err, tc.failure)
		}
		for _, v := range []string{"FELIX_ADRR", "FELIX_TTL"} {
			if !strings.Contains(out, "felix: warning: environment variable "+v+" not used by felix") {
				t.Errorf("felix %s does not warn about %s:\n%s", name, v, out)
			}
		}
		if strings.Contains(out, "FELIX_FANOUT") {
			t.Errorf("felix %s warns about bench pubsub's FELIX_FANOUT:\n%s", name, out)
		}
	}
}
