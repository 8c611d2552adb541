package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/syncbuf"
)

// With --quiet (or -q), `felix sub`, `felix reply` and `felix queue
// consume` go through a broker restart (the same data dir and port) as
// they do without it (each reconnects, or rejoins its group, and goes
// on), but print nothing on stderr: no "connection lost", "reconnected"
// or "consumer rejoined its group" line.
func TestQuietSilencesConnectionLinesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	addr, b, ca, stop := startServeDir(t, dir)
	defer stop()
	conn := []string{"--addr", addr, "--ca-file", ca}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subOut, subErr, subDone := runCLIInBackground(ctx, append([]string{"sub", "demo", "--quiet"}, conn...)...)
	replyOut, replyErr, replyDone := runCLIInBackground(ctx, append([]string{"reply", "svc", "--text", "pong", "--quiet"}, conn...)...)
	conOut, conErr, conDone := runCLIInBackground(ctx, append([]string{"queue", "consume", "jobs", "--count", "2", "-q"}, conn...)...)
	request := func() bool {
		out, err := runCLI(t, append([]string{"request", "svc", "ping", "--timeout", "2s"}, conn...)...)
		return err == nil && out == "pong\n"
	}

	waitSubscribed(t, b, "default", "default", "demo", 1)
	pubCLI(t, addr, ca, "default", "default", "demo", "before")
	eventually(t, "the event before the restart", func() bool { return subOut.String() == "before\n" })
	eventually(t, "a reply before the restart", request)
	pubCLI(t, addr, ca, "default", "default", "jobs", "j1")
	eventually(t, "j1 acked before the restart", func() bool {
		out, err := runCLI(t, append([]string{"queue", "stats", "jobs"}, conn...)...)
		return err == nil && strings.Contains(out, " acked=1 ")
	})

	stop()
	_, b, _, stop = startServeDir(t, dir, "--listen", addr)
	defer stop()
	waitSubscribed(t, b, "default", "default", "demo", 1)
	pubCLI(t, addr, ca, "default", "default", "demo", "after")
	eventually(t, "the event after the restart", func() bool { return subOut.String() == "before\nafter\n" })
	eventually(t, "a reply after the restart", request)
	pubCLI(t, addr, ca, "default", "default", "jobs", "j2")
	select {
	case err := <-conDone:
		if err != nil {
			t.Fatalf("queue consume: %v (stderr %q)", err, conErr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("queue consume did not end; stdout %q stderr %q", conOut.String(), conErr.String())
	}
	if got := conOut.String(); !strings.Contains(got, " j1\n") || !strings.Contains(got, " j2\n") {
		t.Fatalf("queue consume stdout %q: want j1 then j2", got)
	}

	cancel()
	for name, done := range map[string]<-chan error{"sub": subDone, "reply": replyDone} {
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if !strings.HasPrefix(replyOut.String(), "ping\n") {
		t.Errorf("reply stdout %q: want the requests", replyOut.String())
	}
	for name, stderr := range map[string]*syncbuf.Buffer{"sub": subErr, "reply": replyErr, "queue consume": conErr} {
		if s := stderr.String(); s != "" {
			t.Errorf("%s --quiet wrote on stderr: %q", name, s)
		}
	}
}
