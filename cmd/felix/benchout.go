package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/bench"
)

// benchOutput holds the output flags every bench subcommand shares.
type benchOutput struct {
	asJSON, quiet bool
	chartDir      string
}

func (o *benchOutput) register(fl *pflag.FlagSet) {
	fl.BoolVar(&o.asJSON, "json", false, "print JSON (the table's rows, each case's full result and the machine) instead of a table")
	fl.BoolVar(&o.quiet, "quiet", false, "print nothing on stderr while running (no progress bar or lines)")
	fl.StringVar(&o.chartDir, "chart-dir", "", "also write latency percentile and throughput charts (SVG and PNG) into this directory")
}

// progress returns the run's progress reporter on the command's stderr: a
// bar on a terminal, lines otherwise, nothing with --quiet.
func (o benchOutput) progress(cmd *cobra.Command, cases int) *bench.Progress {
	return bench.NewProgress(bench.ProgressOptions{W: cmd.ErrOrStderr(), Cases: cases, Quiet: o.quiet})
}

// emitBench writes the charts (when asked), then the table or the JSON
// report on stdout.
func emitBench[R any](cmd *cobra.Command, o benchOutput, prog *bench.Progress, command string, rows []bench.Row, notes []string, results []R) error {
	prog.Finish()
	if o.chartDir != "" {
		files, err := bench.WriteCharts(o.chartDir, command, rows)
		if err != nil {
			return err
		}
		prog.Logf("charts: %s", strings.Join(files, " "))
	}
	if o.asJSON {
		return bench.WriteReport(cmd.OutOrStdout(), command, rows, results)
	}
	_, err := fmt.Fprint(cmd.OutOrStdout(), bench.FormatRows(rows, notes))
	return err
}

// parseCompare reads a --compare list (comma-separated, the flag
// repeatable) into canonical peer names, in order and without repeats.
// known maps every accepted name, aliases included, to its canonical one.
func parseCompare(list []string, known map[string]string) ([]string, error) {
	var out []string
	for _, item := range list {
		for name := range strings.SplitSeq(item, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			canon, ok := known[name]
			if !ok {
				names := make([]string, 0, len(known))
				for k := range known {
					names = append(names, k)
				}
				slices.Sort(names)
				return nil, fmt.Errorf("--compare: unknown peer %q (want %s)", name, strings.Join(names, ", "))
			}
			if !slices.Contains(out, canon) {
				out = append(out, canon)
			}
		}
	}
	return out, nil
}

// cleanups runs registered stop functions in reverse order.
type cleanups []func() error

func (c *cleanups) add(f func() error) { *c = append(*c, f) }

// run calls the cleanups in reverse order. Its receiver is a pointer so
// that `defer stop.run()` sees the cleanups added after the defer.
func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		_ = (*c)[i]()
	}
}
