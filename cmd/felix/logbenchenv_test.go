package main

import (
	"strings"
	"testing"
)

// felix log bench reads the FELIX_* variables of its flags as felix bench
// log, which measures the same with the same flags, does (and as every
// felix bench subcommand does): before, FELIX_DIR=/fast/disk steered
// `felix bench log` to that disk and left `felix log bench` on /tmp,
// without a word. A flag still wins over its variable.
func TestLogBenchReadsEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FELIX_DIR", dir)
	t.Setenv("FELIX_SYNC", "never")
	t.Setenv("FELIX_WRITERS", "1")
	t.Setenv("FELIX_BATCH", "1")
	t.Setenv("FELIX_DURATION", "1ms")
	out, err := runCLI(t, "log", "bench", "--duration", "2ms")
	if err != nil {
		t.Fatalf("felix log bench: %v\n%s", err, out)
	}
	if !strings.Contains(out, "2ms per case, logs under "+dir+"\n") {
		t.Fatalf("felix log bench did not take FELIX_DIR (or --duration over FELIX_DURATION):\n%s", out)
	}
	if rows := strings.Count(out, "  never  "); rows != 1 {
		t.Fatalf("want one case (FELIX_SYNC=never, FELIX_WRITERS=1), got %d:\n%s", rows, out)
	}
	cmd, _, err := newRootCmd().Find([]string{"log", "bench"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dir", "sync", "writers", "duration", "segment-bytes"} {
		if f := cmd.Flags().Lookup(name); f == nil || !readsEnv(f) {
			t.Errorf("felix log bench --%s: help %q does not name %s", name, usageOf(f), envName(name))
		}
	}
}
