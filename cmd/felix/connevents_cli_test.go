package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/syncbuf"
)

// `felix sub` across a broker restart (the same data dir and port) says
// on stderr that its connection was lost and that it reconnected, one
// line each, and goes on printing events; stdout holds only the events.
func TestSubReportsLostConnectionOnStderr(t *testing.T) {
	dir := t.TempDir()
	addr, b, ca, stop := startServeDir(t, dir)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr, done := runCLIInBackground(ctx, "sub", "demo", "--addr", addr, "--ca-file", ca)
	waitSubscribed(t, b, "default", "default", "demo", 1)
	pubCLI(t, addr, ca, "default", "default", "demo", "before")
	eventually(t, "the event before the restart", func() bool { return stdout.String() == "before\n" })

	stop()
	lost := regexp.MustCompile(`(?m)^felix: connection lost \(event\): .+; reconnecting$`)
	eventually(t, "the connection-lost line", func() bool { return lost.MatchString(stderr.String()) })
	_, b, _, stop = startServeDir(t, dir, "--listen", addr)
	defer stop()
	eventually(t, "the reconnected line", func() bool { return strings.Contains(stderr.String(), "felix: reconnected (event)\n") })
	waitSubscribed(t, b, "default", "default", "demo", 1)
	pubCLI(t, addr, ca, "default", "default", "demo", "after")
	eventually(t, "the event after the restart", func() bool { return stdout.String() == "before\nafter\n" })

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sub: %v (stderr %q)", err, stderr.String())
	}
	if got := stdout.String(); got != "before\nafter\n" {
		t.Errorf("stdout %q, want only the two events", got)
	}
	t.Logf("stderr:\n%s", stderr.String())
	// Each loss (a redial may reach the old broker while it drains) is
	// followed by its reconnection.
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines)%2 != 0 {
		t.Fatalf("stderr %q: want pairs of lines", stderr.String())
	}
	for i, l := range lines {
		if want := i%2 == 0; lost.MatchString(l) != want || (!want && l != "felix: reconnected (event)") {
			t.Fatalf("stderr line %d %q of %q: want a loss, then a reconnection", i, l, stderr.String())
		}
	}
}

// `felix queue consume` rejoins its group across a broker restart (the
// same data dir and port) instead of exiting: every record published
// before and after is printed, the ones acked before the restart once,
// and stderr says it rejoined.
func TestQueueConsumeRejoinsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	addr, _, ca, stop := startServeDir(t, dir)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr, done := runCLIInBackground(ctx, "queue", "consume", "jobs", "--count", "4", "--addr", addr, "--ca-file", ca)
	pubCLI(t, addr, ca, "default", "default", "jobs", "j1", "j2")
	eventually(t, "the records before the restart", func() bool {
		return strings.Contains(stdout.String(), " j1\n") && strings.Contains(stdout.String(), " j2\n")
	})
	// Their acks reached the broker before it stops (else they would be
	// delivered again, at-least-once).
	eventually(t, "the two acks", func() bool {
		out, err := runCLI(t, "queue", "stats", "jobs", "--addr", addr, "--ca-file", ca)
		return err == nil && strings.Contains(out, " acked=2 ")
	})

	stop()
	_, _, _, stop = startServeDir(t, dir, "--listen", addr)
	defer stop()
	pubCLI(t, addr, ca, "default", "default", "jobs", "j3", "j4")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("queue consume: %v (stderr %q)", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("queue consume did not end; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	for _, j := range []string{"j1", "j2", "j3", "j4"} {
		if strings.Count(stdout.String(), " "+j+"\n") != 1 {
			t.Fatalf("stdout %q: want each of j1..j4 once", stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "felix: consumer rejoined its group\n") {
		t.Fatalf("stderr %q: no rejoin line", stderr.String())
	}
}

// runCLIInBackground runs the felix command args until it ends or ctx
// does, with an empty stdin; its output is read from stdout and stderr
// as it goes, and its result arrives on done.
func runCLIInBackground(ctx context.Context, args ...string) (stdout, stderr *syncbuf.Buffer, done <-chan error) {
	stdout, stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	res := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(stdout)
		cmd.SetErr(stderr)
		cmd.SetIn(strings.NewReader(""))
		cmd.SetArgs(args)
		res <- cmd.ExecuteContext(ctx)
	}()
	return stdout, stderr, res
}
