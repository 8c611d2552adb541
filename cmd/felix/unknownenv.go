package main

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// otherEnv are FELIX_* variables read outside the commands' flags: the
// benchmark peers' binaries and the test helpers.
var otherEnv = []string{"FELIX_NATS_SERVER", "FELIX_REDIS_SERVER", "FELIX_TEST_LOG", "FELIX_WIRE_VECTORS"}

// unknownEnv returns the names of the FELIX_* variables in environ (as
// os.Environ gives it) that no felix command reads, sorted: most likely
// typos (FELIX_QUEUE_POLCY), which would otherwise be ignored in silence.
// Known are every command's flags' variables (the client commands' too,
// as they often share an environment with the broker), the reference
// broker's names serve accepts, and otherEnv.
func unknownEnv(root *cobra.Command, environ []string) []string {
	known := map[string]bool{}
	for _, n := range otherEnv {
		known[n] = true
	}
	for n := range referenceEnv {
		known[n] = true
	}
	eachFlag(root, func(f *pflag.Flag) { known[envName(f.Name)] = true })
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

// reportUnknownEnv warns about every FELIX_* variable no felix command
// reads (see unknownEnv). The broker starts anyway, as with an unknown
// variable of any other program.
func reportUnknownEnv(log *slog.Logger, root *cobra.Command, environ []string) {
	for _, name := range unknownEnv(root, environ) {
		log.Warn("environment variable not used by felix: ignored (a typo? `felix serve --help` shows each flag's variable)", "name", name)
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
