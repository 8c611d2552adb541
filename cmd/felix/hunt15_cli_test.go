package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/syncbuf"
)

// felix serve gives the broker engine its logger: the engine's warnings
// (here a refusal by the auto-create bound, which metrics.md says is
// logged) reach the broker's log.
func TestHunt15ServeLogsEngineWarnings(t *testing.T) {
	logs := &syncbuf.Buffer{}
	addr, _, ca, stop := startServeLogs(t, t.TempDir(), logs, "--no-dev-defaults", "--auto-create", "--auto-create-max-streams", "1")
	defer stop()
	conn := []string{"--addr", addr, "--ca-file", ca}
	if _, err := runCLI(t, append([]string{"pub", "s1", "a"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, append([]string{"pub", "s2", "a"}, conn...)...); err == nil || !strings.Contains(err.Error(), "too many streams") {
		t.Fatalf("pub to a second stream: %v, want too many streams", err)
	}
	if !strings.Contains(logs.String(), "stream not auto-created: too many streams") {
		t.Fatalf("the refusal is not in the broker's log:\n%s", logs.String())
	}
}

// A --raw message within the CLI's 16 MiB read but too large for one
// publish frame with its header and names is refused with a message
// that says so, not only the SDK's frame size.
func TestHunt15PubRawOverTheFrame(t *testing.T) {
	addr, _, ca := startServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := newRootCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetIn(bytes.NewReader(make([]byte, maxRawMessage-10)))
	cmd.SetArgs([]string{"pub", "demo", "--raw", "--addr", addr, "--ca-file", ca})
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "do not fit in one publish frame") {
		t.Fatalf("pub --raw of %d bytes: %v, want it refused as not fitting a publish frame", maxRawMessage-10, err)
	}
}
