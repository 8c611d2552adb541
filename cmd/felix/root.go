package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/wire"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "felix",
		Short:         "Felix: pub/sub streams, queues and a TTL cache over one QUIC transport",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runs for the commands without a hook of their own; a no-op
		// but for shell completion.
		PersistentPreRunE: completeNegativeArgs,
	}
	root.AddCommand(newVersionCmd(), newServeCmd(), newBackupCmd(), newAdminCmd(), newStatusCmd(), newPubCmd(), newRequestCmd(), newReplyCmd(), newSubCmd(), newCacheCmd(), newQueueCmd(), newPurgeCmd(), newBenchCmd(), newLogCmd(), newTokenCmd(), newControlPlaneCmd(), newDemoCmd())
	return root
}

func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	return v
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary and the protocol it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "felix %s (felix-wire v%d, flags %#04x, %s %s/%s)\n",
				versionString(), wire.Version, wire.KnownFlags, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
