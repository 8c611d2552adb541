package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// benchZero says what 0 (an empty --dir) does to each numeric setting of
// the benchmarks other than bench soak (TestBenchSoakHelpSaysWhatZeroMeans).
var benchZero = []struct {
	cmd []string
	// defaults maps the flags whose 0 silently becomes a value to what
	// their help must say of it.
	defaults map[string]string
	// refused are refused at 0; literal take 0 for what it says (no
	// warm-up, as fast as possible, empty records, …).
	refused, literal []string
}{
	{cmd: []string{"bench", "pubsub"},
		defaults: map[string]string{"fanout": "(0: 1)", "payload": zeroIsDefault, "batch": zeroIsDefault,
			"total": "(0: 10000)", "rounds": zeroIsDefault},
		literal: []string{"rate", "warmup", "server-gomaxprocs"}},
	{cmd: []string{"bench", "matrix"},
		defaults: map[string]string{"rounds": zeroIsDefault},
		refused:  []string{"fanouts", "batches", "count"},
		literal:  []string{"payloads", "rate", "warmup", "server-gomaxprocs"}},
	{cmd: []string{"bench", "cache"},
		defaults: map[string]string{"concurrency": "(0: 1)", "keys": zeroIsDefault, "value": zeroIsDefault,
			"duration": zeroIsDefault, "conns": "(0: 2)", "streams-per-conn": "(0: 4)", "rounds": zeroIsDefault},
		literal: []string{"warmup", "server-gomaxprocs"}},
	{cmd: []string{"bench", "queue"},
		defaults: map[string]string{"records": zeroIsDefault, "consumers": zeroIsDefault, "payload": zeroIsDefault,
			"publish-batch": zeroIsDefault, "publish-window": "(0: the default, or --publish-batch when that is larger)",
			"prefetch": zeroIsDefault, "timeout": zeroIsDefault, "rounds": zeroIsDefault},
		literal: []string{"warmup", "rate", "server-gomaxprocs"}},
	{cmd: []string{"bench", "request"},
		defaults: map[string]string{"timeout": zeroIsDefault, "rounds": zeroIsDefault},
		refused:  []string{"concurrency", "payload", "total"},
		literal:  []string{"warmup", "server-gomaxprocs"}},
	{cmd: []string{"bench", "log"},
		defaults: map[string]string{"sync-interval": zeroIsDefault, "segment-bytes": zeroIsDefault,
			"dir": emptyIsDefault, "rounds": zeroIsDefault},
		refused: []string{"writers", "batch", "duration"},
		literal: []string{"record-bytes", "warmup"}},
	{cmd: []string{"log", "bench"},
		defaults: map[string]string{"sync-interval": zeroIsDefault, "segment-bytes": zeroIsDefault, "dir": emptyIsDefault},
		refused:  []string{"writers", "batch", "duration"},
		literal:  []string{"record-bytes"}},
}

// Every benchmark setting whose 0 (or empty --dir) silently becomes a
// default says so in its help, as bench soak's do: "bench pubsub --total
// 0" measured 10000 messages and "bench cache --conns 0" used 2
// connections with nothing in --help saying so. A setting refused at 0
// is refused before anything starts, and every numeric setting is
// classified here.
func TestBenchHelpSaysWhatZeroMeans(t *testing.T) {
	for _, tc := range benchZero {
		name := strings.Join(tc.cmd, " ")
		cmd, _, err := newRootCmd().Find(tc.cmd)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			if !benchNumeric(fl) {
				return
			}
			if _, ok := tc.defaults[fl.Name]; !ok && !slices.Contains(tc.refused, fl.Name) && !slices.Contains(tc.literal, fl.Name) {
				t.Errorf("%s --%s: not classified: what does 0 do?", name, fl.Name)
			}
		})
		for flag, says := range tc.defaults {
			if fl := cmd.Flags().Lookup(flag); fl == nil || !strings.Contains(fl.Usage, strings.TrimSpace(says)) {
				t.Errorf("%s --%s: help %q does not say %q", name, flag, usageOf(fl), strings.TrimSpace(says))
			}
		}
		for _, flag := range tc.refused {
			if _, err := runCLI(t, refuseZeroArgs(t, tc.cmd, flag)...); err == nil || strings.Contains(err.Error(), "--broker") {
				t.Errorf("felix %s --%s 0: %v, want 0 refused", name, flag, err)
			}
		}
	}
}

// refuseZeroArgs is the command line of cmd with --flag 0, set to fail
// on something else (--broker nowhere) or to be short should 0 pass.
func refuseZeroArgs(t *testing.T, cmd []string, flag string) []string {
	args := slices.Clone(cmd)
	if !slices.Contains(cmd, "log") {
		return append(args, "--quiet", "--broker", "nowhere", "--"+flag, "0")
	}
	// Given twice, a list flag (--writers) holds both values.
	return append(args, "--dir", t.TempDir(), "--sync", "never", "--writers", "1", "--batch", "1", "--duration", "1ms", "--"+flag, "0")
}

// benchNumeric reports whether fl takes a number, a list of numbers or
// (--dir) a directory whose empty value could become a default.
func benchNumeric(fl *pflag.Flag) bool {
	switch fl.Value.Type() {
	case "int", "int64", "duration", "intSlice":
		return true
	}
	return fl.Name == "dir"
}

func usageOf(fl *pflag.Flag) string {
	if fl == nil {
		return "(no such flag)"
	}
	return fl.Usage
}
