package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/demo"
	"github.com/felixmq/felix/transport"
)

type demoFlags struct {
	addr, caFile, serverName, token string
	insecure, quick                 bool
	timeout                         time.Duration
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	var list strings.Builder
	for _, n := range demo.Names() {
		fmt.Fprintf(&list, "  %-14s %s\n", n, demo.Describe(n))
	}
	cmd := &cobra.Command{
		Use:   "demo NAME",
		Short: "Run a guided demo (simple, notifications, orders, cache, latency)",
		Long: `Runs a guided demo against a broker started inside this process on
127.0.0.1 (or an external one with --addr), printing numbered steps. Each demo
checks the claims it prints; the command fails when one does not hold.

Demos:
` + list.String() + `
Example: felix demo simple`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: demo.Names(),
		PreRunE:   envPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runDemo(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "run against this external broker (host:port) instead of an embedded one")
	fl.StringVar(&f.caFile, "ca-file", "", "CA file for --addr (default: "+devCertPath+" when it exists and the broker is local)")
	fl.StringVar(&f.serverName, "server-name", "localhost", "name to verify in the external broker's certificate")
	fl.BoolVar(&f.insecure, "insecure", false, "skip certificate verification for --addr (development only)")
	fl.StringVar(&f.token, "token", "dev", "auth token for --addr")
	fl.BoolVar(&f.quick, "quick", false, "smaller message counts (the same steps and claims)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long")
	annotateEnv(fl)
	return cmd
}

func runDemo(ctx context.Context, cmd *cobra.Command, f demoFlags) error {
	if err := checkTimeout(f.timeout); err != nil {
		return err
	}
	name := cmd.Flags().Arg(0)
	opts := demo.Options{Addr: f.addr, Token: f.token, Quick: f.quick}
	if f.addr != "" {
		tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: caFor(f.caFile, f.addr, f.insecure), Insecure: f.insecure, ServerName: f.serverName})
		if err != nil {
			return err
		}
		opts.TLS = tlsConf
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return demo.Run(ctx, name, cmd.OutOrStdout(), opts)
}
