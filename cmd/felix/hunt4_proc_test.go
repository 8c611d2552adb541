package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/syncbuf"
)

// cliProc is a client command of the felix binary (this test binary run
// as main) in a child process.
type cliProc struct {
	cmd      *exec.Cmd
	out, err *syncbuf.Buffer
	done     chan struct{}
	waitErr  error
}

func startCLIProc(t *testing.T, args ...string) *cliProc {
	t.Helper()
	if testing.Short() {
		t.Skip("runs felix processes")
	}
	p := &cliProc{out: &syncbuf.Buffer{}, err: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.err
	runSelf(t, p.cmd, &p.waitErr, p.done)
	return p
}

// exit waits (bounded, against a hang) for the process and returns its
// exit status.
func (p *cliProc) exit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not exit; stdout %q stderr %q", p.cmd.Args[1:], p.out, p.err)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatal(p.waitErr)
	}
	return 0
}

// waitOutput waits (bounded) until stdout holds n lines.
func (p *cliProc) waitOutput(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.out.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%v: stdout %q, want %d lines; stderr %q", p.cmd.Args[1:], p.out, n, p.err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SIGINT and SIGTERM end `felix sub` and `felix queue consume` cleanly:
// status 0, everything received printed, --count-only's count written.
func TestHunt4SignalsEndSubAndConsume(t *testing.T) {
	addr, b, ca := startServe(t, "--durable-stream", "default/default/jobs")
	conn := []string{"--addr", addr, "--ca-file", ca}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	counter := startCLIProc(t, append([]string{"sub", "demo", "--count-only"}, conn...)...)
	printer := startCLIProc(t, append([]string{"sub", "demo", "--json"}, conn...)...)
	waitSubscribed(t, b, "default", "default", "demo", 2)
	if _, _, err := runCLISplit(ctx, append([]string{"pub", "demo", "a", "b", "c"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	printer.waitOutput(t, 3)
	printer.cmd.Process.Signal(syscall.SIGINT)
	if code := printer.exit(t); code != 0 || strings.Count(printer.out.String(), "\n") != 3 || printer.err.String() != "" {
		t.Fatalf("sub --json after SIGINT: status %d, stdout %q, stderr %q", code, printer.out, printer.err)
	}
	counter.cmd.Process.Signal(syscall.SIGTERM)
	if code := counter.exit(t); code != 0 || !strings.HasSuffix(counter.out.String(), "\n") || counter.err.String() != "" {
		t.Fatalf("sub --count-only after SIGTERM: status %d, stdout %q, stderr %q", code, counter.out, counter.err)
	}

	if _, _, err := runCLISplit(ctx, append([]string{"pub", "jobs", "j1", "j2"}, conn...)...); err != nil {
		t.Fatal(err)
	}
	consumer := startCLIProc(t, append([]string{"queue", "consume", "jobs"}, conn...)...)
	consumer.waitOutput(t, 2)
	consumer.cmd.Process.Signal(syscall.SIGTERM)
	if code := consumer.exit(t); code != 0 || consumer.out.String() != "offset=0 attempt=1 j1\noffset=1 attempt=1 j2\n" {
		t.Fatalf("queue consume after SIGTERM: status %d, stdout %q, stderr %q", code, consumer.out, consumer.err)
	}
	// --idle-exit and --count end them with status 0 too.
	idle := startCLIProc(t, append([]string{"sub", "demo", "--idle-exit", "100ms", "--count-only"}, conn...)...)
	if code := idle.exit(t); code != 0 || idle.out.String() != "0\n" {
		t.Fatalf("sub --idle-exit: status %d, stdout %q, stderr %q", code, idle.out, idle.err)
	}
}

// Errors exit with status 1 and one "felix: ..." line on stderr, in every
// client command: a broker that is not there (within the dial's bound,
// never a hang), an unknown stream, cache or group, a usage mistake.
func TestHunt4ErrorsExitOne(t *testing.T) {
	addr, _, ca := startServe(t, "--durable-stream", "default/default/jobs")
	conn := []string{"--addr", addr, "--ca-file", ca}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := udp.LocalAddr().String()
	udp.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pub", "demo", "x", "--addr", dead, "--insecure"}, "felix: no broker answered at " + dead},
		{[]string{"queue", "consume", "jobs", "--addr", dead, "--insecure"}, "felix: no broker answered at " + dead},
		{append([]string{"pub", "nope", "x"}, conn...), "felix: server: stream not found"},
		{append([]string{"sub", "nope"}, conn...), "felix: server: stream not found"},
		{append([]string{"cache", "get", "k", "-c", "nope"}, conn...), "felix: server: cache scope not found"},
		{append([]string{"queue", "delete", "jobs", "-g", "nope"}, conn...), "felix: queue group not found"},
		{append([]string{"cache", "get", "missing"}, conn...), "felix: key not found"},
		{[]string{"sub"}, "felix: accepts 1 arg(s), received 0"},
		{[]string{"pub", "demo", "--repeat", "x"}, `felix: invalid argument "x" for "--repeat"`},
	} {
		p := startCLIProc(t, c.args...)
		if code := p.exit(t); code != 1 || !strings.HasPrefix(p.err.String(), c.want) || strings.Count(p.err.String(), "\n") != 1 {
			t.Errorf("%v: status %d, stderr %q, want 1 and %q", c.args, code, p.err, c.want)
		}
	}
}
