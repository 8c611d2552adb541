package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A negative count, prefetch or idle time of the commands that wait for
// messages is refused before anything is dialed, naming the flag. Before,
// each was taken as 0: `felix sub --count -1` and `felix queue consume
// --idle-exit -1s` ran until interrupted, `--prefetch -1` used the
// broker's default, without a word.
func TestClientCommandsRefuseNegativeNumbers(t *testing.T) {
	// Nothing listens there: a flag that passes would fail on dialing
	// (after the dial timeout), with another error.
	conn := []string{"--addr", "127.0.0.1:1", "--insecure"}
	for _, tc := range []struct{ args []string }{
		{[]string{"sub", "demo", "--count", "-1"}},
		{[]string{"sub", "demo", "--idle-exit", "-1s"}},
		{[]string{"queue", "consume", "jobs", "--group", "g", "--count", "-1"}},
		{[]string{"queue", "consume", "jobs", "--group", "g", "--prefetch", "-1"}},
		{[]string{"queue", "consume", "jobs", "--group", "g", "--idle-exit", "-1s"}},
		{[]string{"reply", "svc", "--count", "-1"}},
		{[]string{"reply", "svc", "--max-in-flight", "-1"}},
	} {
		name := strings.Join(tc.args, " ")
		flag := tc.args[len(tc.args)-2]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := runCLI(t, append(tc.args, conn...)...)
			if err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), "negative") {
				t.Fatalf("felix %s: %v, want the negative value refused, naming %s\n%s", name, err, flag, out)
			}
		})
	}
}

// felix status refuses a negative --interval (taken as 0: no rates) or
// --count (with --watch: until interrupted) before reading anything.
func TestStatusRefusesNegativeNumbers(t *testing.T) {
	for flag, args := range map[string][]string{
		"--interval": {"--interval", "-1s"},
		"--count":    {"--watch", "--count", "-1"},
	} {
		out, err := runCLI(t, append([]string{"status", "--metrics-addr", "127.0.0.1:1"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), "negative") {
			t.Errorf("felix status %v: %v, want it refused, naming the flag\n%s", args, err, out)
		}
	}
}

// Ctrl-C (SIGINT, here the command's context ending) while `felix
// status` waits --interval for its second read ends it as Ctrl-C ends
// the other commands: exit status 0, with what the first read found
// printed (no rates). Before, it failed with "felix: context canceled".
// (The test server cannot tell when the first answer has been read: an
// interrupt during that read ends the command with status 0 too, and
// nothing printed.)
func TestStatusInterruptedDuringInterval(t *testing.T) {
	firstRead := make(chan struct{}, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"ready","uptime_seconds":3}`))
		select {
		case firstRead <- struct{}{}:
		default:
		}
	}))
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-firstRead
		cancel() // as SIGINT does (withSignals)
	}()
	out, errOut, err := runCLISplit(ctx, "status", "--metrics-addr", strings.TrimPrefix(hs.URL, "http://"), "--interval", time.Hour.String())
	if err != nil || (out != "" && !strings.Contains(out, "broker ready, up 3s")) {
		t.Fatalf("status interrupted during --interval: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}
