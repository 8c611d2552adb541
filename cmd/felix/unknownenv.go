package main

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// otherEnv are FELIX_* variables read outside the commands' flags: the
// benchmark peers' binaries and the test helpers.
var otherEnv = []string{
	"FELIX_NATS_SERVER", "FELIX_REDIS_SERVER", "FELIX_TEST_LOG", "FELIX_WIRE_VECTORS",
	// The project's scripts and test suites (scripts/, e2e, bench).
	"FELIX_BENCH_BASELINE", "FELIX_BENCH_CACHE", "FELIX_BENCH_CACHE_DURATION", "FELIX_BENCH_CACHE_JSON",
	"FELIX_BENCH_JSON", "FELIX_BENCH_PACING", "FELIX_BENCH_ROUNDS", "FELIX_CHROMIUM", "FELIX_FAULT_SEED",
	"FELIX_NATS_JS", "FELIX_NATS_PORT", "FELIX_NATS_URL", "FELIX_PEERS_DIR", "FELIX_PEERS_NO_APT",
	"FELIX_PEERS_WAIT", "FELIX_REDIS_ADDR", "FELIX_REDIS_PORT",
}

// unknownEnv returns the names of the FELIX_* variables in environ (as
// os.Environ gives it) that no felix command reads, sorted: most likely
// typos (FELIX_QUEUE_POLCY), which would otherwise be ignored in silence.
// Known are the variables some command reads, whichever command runs (a
// shell profile shared by the broker, the client commands and the
// benchmarks holds the variables of each): those its flags' help names
// ("(env FELIX_X)"), the reference broker's names serve accepts, and
// otherEnv. The variable of a flag that reads none (cache put's --ttl:
// FELIX_TTL) is unknown, as it changes nothing.
func unknownEnv(root *cobra.Command, environ []string) []string {
	known := map[string]bool{}
	for _, n := range otherEnv {
		known[n] = true
	}
	for n := range referenceEnv {
		known[n] = true
	}
	eachFlag(root, func(f *pflag.Flag) {
		if readsEnv(f) {
			known[flagEnv(f)] = true
		}
	})
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FELIX_") && !known[name] && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// readsEnv reports whether f is set from its FELIX_* variable: its help
// says so (annotateEnv), which TestEveryDocumentedEnvVariableIsRead
// checks.
func readsEnv(f *pflag.Flag) bool {
	return strings.Contains(f.Usage, "(env "+flagEnv(f)+")")
}

// reportUnknownEnv warns about every FELIX_* variable no felix command
// reads (see unknownEnv). The broker starts anyway, as with an unknown
// variable of any other program.
func reportUnknownEnv(log *slog.Logger, root *cobra.Command, environ []string) {
	for _, name := range unknownEnv(root, environ) {
		log.Warn("environment variable not used by felix: ignored (a typo? `felix serve --help` shows each flag's variable)", "name", name)
	}
}

// warnUnknownEnv is reportUnknownEnv for the other commands that read
// FELIX_* variables: a line on cmd's stderr for each, and the command
// goes on.
func warnUnknownEnv(cmd *cobra.Command) {
	for _, name := range unknownEnv(cmd.Root(), os.Environ()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "felix: warning: environment variable %s not used by felix: ignored (a typo? `%s --help` shows each flag's variable)\n",
			name, cmd.CommandPath())
	}
}

// eachFlag calls fn with every flag of c and of its subcommands, at any
// depth.
func eachFlag(c *cobra.Command, fn func(*pflag.Flag)) {
	c.Flags().VisitAll(fn)
	c.PersistentFlags().VisitAll(fn)
	for _, sub := range c.Commands() {
		eachFlag(sub, fn)
	}
}
