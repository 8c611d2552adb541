package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// No numeric setting of a benchmark takes a negative value: "bench pubsub
// --rounds -3" ran one round, "--total -5" measured the default 10000
// messages, "log bench --segment-bytes -1" used the default segment size,
// each without a word, as 0 does (TestBenchHelpSaysWhatZeroMeans) but
// with no help saying so. Every numeric flag of every benchmark refuses a
// negative value before anything starts, naming the flag.
func TestBenchRefusesNegativeNumbers(t *testing.T) {
	cmds := [][]string{{"bench", "soak"}}
	for _, tc := range benchZero {
		cmds = append(cmds, tc.cmd)
	}
	for _, c := range cmds {
		name := strings.Join(c, " ")
		cmd, _, err := newRootCmd().Find(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checked := 0
		cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			if !benchNumeric(fl) || fl.Value.Type() == "string" {
				return
			}
			checked++
			args := negativeArgs(t, c, fl)
			out, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), "--"+fl.Name) || !strings.Contains(err.Error(), "negative") {
				t.Errorf("felix %s --%s %s: %v, want the negative value refused, naming the flag\n%s", name, fl.Name, args[len(args)-1], err, out)
			}
		})
		if checked == 0 {
			t.Errorf("%s: no numeric flag checked", name)
		}
	}
}

// A negative value from a FELIX_* variable is refused too, naming the
// variable.
func TestBenchRefusesNegativeNumbersFromEnv(t *testing.T) {
	t.Setenv("FELIX_ROUNDS", "-2")
	out, err := runCLI(t, "bench", "pubsub", "--quiet", "--broker", "nowhere")
	if err == nil || !strings.Contains(err.Error(), "FELIX_ROUNDS") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("FELIX_ROUNDS=-2 felix bench pubsub: %v, want the negative value refused, naming the variable\n%s", err, out)
	}
}

// negativeArgs is the command line of cmd with --flag -1 (-1s for a
// duration), set to fail on something else (--broker nowhere) or to be
// short should it pass.
func negativeArgs(t *testing.T, cmd []string, fl *pflag.Flag) []string {
	args := refuseZeroArgs(t, cmd, fl.Name)
	args[len(args)-1] = "-1"
	if fl.Value.Type() == "duration" {
		args[len(args)-1] = "-1s"
	}
	return args
}
