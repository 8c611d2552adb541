package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/client"
)

// newPurgeCmd is `felix purge STREAM`: remove every event a stream holds
// (`nats stream purge`, `rabbitmqctl purge_queue`).
func newPurgeCmd() *cobra.Command {
	var f clientFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge STREAM",
		Short: "Remove every event a stream holds; offsets go on where they were (needs stream.manage)",
		Long: `Remove every event the stream holds, in memory or on disk, as
'nats stream purge' or 'rabbitmqctl purge_queue' do. Offsets are not reused:
the next event gets the offset it would have had. Live subscribers go on
with the events published after the purge; consumer groups skip the purged
records they had not read yet and count them as lost. It cannot be undone,
so it asks for --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			stream := cmd.Flags().Arg(0)
			if !yes {
				return errors.New("purge removes every event of " + stream + " for good: pass --yes to do it")
			}
			c, err := f.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.PurgeStream(ctx, f.namespace, stream)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "purged %d events from %s; the next event gets offset %d\n", res.Purged, stream, res.Offset)
			return err
		}),
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really purge (required)")
	return clientCmd(cmd, &f)
}

// newCacheFlushCmd is `felix cache flush --yes` (Redis FLUSHDB for one
// cache). run wraps a subcommand with the client and the cache.
func newCacheFlushCmd(run func(func(*cobra.Command, *client.Cache, []string) error) func(*cobra.Command, []string) error) *cobra.Command {
	var yes bool
	flush := run(func(cmd *cobra.Command, kv *client.Cache, _ []string) error {
		n, err := kv.Flush(cmd.Context())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed %d entries\n", n)
		return err
	})
	cmd := &cobra.Command{
		Use:   "flush",
		Short: "Remove every entry of the cache, as Redis FLUSHDB (needs cache.manage and --yes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				name, _ := cmd.Flags().GetString("cache")
				return errors.New("flush removes every entry of cache " + name + " for good: pass --yes to do it")
			}
			return flush(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really flush (required)")
	return cmd
}
