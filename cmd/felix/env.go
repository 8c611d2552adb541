package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envPreRun applies FELIX_* variables to a command's unset flags, after
// warning about those no command reads (warnUnknownEnv).
func envPreRun(cmd *cobra.Command, _ []string) error {
	warnUnknownEnv(cmd)
	return applyEnv(cmd.Flags())
}

// withSignals runs fn with a context cancelled by SIGINT or SIGTERM.
func withSignals(fn func(ctx context.Context, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return fn(ctx, cmd)
	}
}

// checkTimeout refuses a --timeout that is not positive: a deadline of 0
// or less has passed already, so every request would fail at once with
// "context deadline exceeded" before anything was sent.
func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--timeout %v: want a positive duration", d)
	}
	return nil
}

// envName maps a flag name to its environment variable: queue-policy →
// FELIX_QUEUE_POLICY.
func envName(flag string) string {
	return "FELIX_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envAnnotation is the pflag annotation naming a flag's variable when it
// is not envName of its name: serve's --cache reads FELIX_DECLARE_CACHE,
// as FELIX_CACHE is the client commands' cache name (one shell profile
// holds both).
const envAnnotation = "felix_env"

// flagEnv returns the FELIX_* variable f reads (when it reads one): its
// envAnnotation, else envName of its name.
func flagEnv(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) == 1 {
		return v[0]
	}
	return envName(f.Name)
}

// applyEnv sets every flag that was not given on the command line from its
// FELIX_* environment variable, if present (flag > env > default).
func applyEnv(fs *pflag.FlagSet) error { return applyEnvTo(fs, nil) }

// applyEnvTo is applyEnv for the flags named in only (every flag when only
// is nil).
func applyEnvTo(fs *pflag.FlagSet, only map[string]bool) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || (only != nil && !only[f.Name]) {
			return
		}
		v, ok := os.LookupEnv(flagEnv(f))
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %w", flagEnv(f), v, e)
		}
	})
	return err
}

// annotateEnv appends "(env FELIX_X)" to every flag's usage (flagEnv: set
// an envAnnotation first).
func annotateEnv(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			f.Usage += " (env " + flagEnv(f) + ")"
		}
	})
}
