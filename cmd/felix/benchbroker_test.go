package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// benchCmdsWithBroker are the benchmarks that have --broker and --addr,
// each in a root command of its own.
func benchCmdsWithBroker(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, sub := range newRootCmd().Commands() {
		if sub.Name() != "bench" {
			continue
		}
		for _, b := range sub.Commands() {
			if b.Flags().Lookup("addr") != nil && b.Flags().Lookup("broker") != nil {
				names = append(names, b.Name())
			}
		}
	}
	if len(names) < 5 {
		t.Fatalf("only %v have --broker and --addr", names)
	}
	return names
}

// benchPreRunWith parses args as flags of `felix bench name` and runs its
// PreRunE (where the FELIX_* variables apply); it returns the command,
// what it wrote on stderr and the PreRunE's error.
func benchPreRunWith(t *testing.T, name string, args ...string) (*cobra.Command, string, error) {
	t.Helper()
	c, _, err := newRootCmd().Find([]string{"bench", name})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.SetErr(&stderr)
	if err := c.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	err = c.PreRunE(c, nil)
	return c, stderr.String(), err
}

// A --broker process or embedded given on the command line wins over an
// --addr from FELIX_ADDR (a shell profile's, set for the client
// commands): the benchmark measures a broker it starts, and does not say
// it measures the one at FELIX_ADDR. --broker external, or no --broker on
// the command line, keeps the address from the variable (and says so).
// Before, the variable's address won over every --broker.
func TestBenchExplicitBrokerWinsOverEnvAddr(t *testing.T) {
	t.Setenv("FELIX_ADDR", "127.0.0.1:1")
	notice := "bench: --addr 127.0.0.1:1 from FELIX_ADDR: benchmarking the broker there (--broker external)"
	for _, name := range benchCmdsWithBroker(t) {
		for _, c := range []struct {
			args       []string
			wantAddr   string
			wantNotice bool
		}{
			{args: []string{"--broker", "process"}},
			{args: []string{"--broker=embedded"}},
			{args: []string{"--broker", "external"}, wantAddr: "127.0.0.1:1", wantNotice: true},
			{args: nil, wantAddr: "127.0.0.1:1", wantNotice: true},
		} {
			cmd, stderr, err := benchPreRunWith(t, name, c.args...)
			if err != nil {
				t.Errorf("bench %s %v with FELIX_ADDR: %v", name, c.args, err)
				continue
			}
			if got := cmd.Flags().Lookup("addr").Value.String(); got != c.wantAddr {
				t.Errorf("bench %s %v with FELIX_ADDR: --addr %q, want %q", name, c.args, got, c.wantAddr)
			}
			if got := strings.Count(stderr, notice); got != map[bool]int{true: 1}[c.wantNotice] {
				t.Errorf("bench %s %v with FELIX_ADDR: stderr %q, want the notice %v", name, c.args, stderr, c.wantNotice)
			}
		}
	}
}

// --broker process or embedded and --addr both on the command line
// contradict each other: the run is refused before anything starts,
// naming both. Before, --addr won and --broker was ignored.
func TestBenchBrokerAndAddrOnCommandLineRefused(t *testing.T) {
	for _, name := range benchCmdsWithBroker(t) {
		for _, mode := range []string{"process", "embedded"} {
			// --ca-file of a missing file: a run that went on to the
			// external broker fails at its dial, before any traffic.
			_, _, err := runCLISplit(context.Background(), "bench", name, "--quiet", "--broker", mode, "--addr", "127.0.0.1:1", "--ca-file", "/nonexistent/ca.pem")
			want := "--broker " + mode + " and --addr 127.0.0.1:1: --broker " + mode + " measures a broker this command starts, --addr the external broker there; give one of them"
			if err == nil || err.Error() != want {
				t.Errorf("bench %s --broker %s --addr 127.0.0.1:1: %v, want %q", name, mode, err, want)
			}
		}
		// --broker external with --addr is what it says: the run goes on
		// (and fails at the external broker's --ca-file, or for soak at
		// its missing --metrics-url).
		_, _, err := runCLISplit(context.Background(), "bench", name, "--quiet", "--broker", "external", "--addr", "127.0.0.1:1", "--ca-file", "/nonexistent/ca.pem")
		if err == nil || strings.Contains(err.Error(), "give one of them") {
			t.Errorf("bench %s --broker external --addr: %v, want the run to go on to the external broker", name, err)
		}
	}
}

// End to end: with FELIX_ADDR naming no broker (and --ca-file a missing
// file, which only an external broker would read), `felix bench pubsub
// --broker embedded` and `--broker process` measure a broker of their
// own and succeed.
func TestBenchExplicitBrokerRunsOwnBrokerDespiteEnvAddr(t *testing.T) {
	t.Setenv("FELIX_ADDR", "127.0.0.1:1")
	t.Setenv(asFelixEnv, "1") // the felix serve child is this test binary
	for _, mode := range []string{"embedded", "process"} {
		out, stderr, err := runCLISplit(context.Background(), "bench", "pubsub", "--broker", mode, "--fanout", "1", "--sub-conns", "per-sub",
			"--total", "50", "--warmup", "0", "--rate", "0", "--quiet", "--ca-file", "/nonexistent/ca.pem")
		if err != nil {
			t.Errorf("bench pubsub --broker %s with FELIX_ADDR=127.0.0.1:1: %v\n%s", mode, err, stderr)
			continue
		}
		if strings.Contains(stderr, "FELIX_ADDR") || !strings.Contains(out, "felix") {
			t.Errorf("bench pubsub --broker %s with FELIX_ADDR: stdout %q stderr %q", mode, out, stderr)
		}
	}
}
