package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/client"
)

func newQueueCmd() *cobra.Command {
	var f clientFlags
	var group string
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Work queues: consume a stream as a member of a consumer group, show a group's stats, or delete a group",
	}
	cmd.PersistentFlags().StringVarP(&group, "group", "g", "workers", "consumer group")
	var count, prefetch int
	var name string
	var nack, quiet bool
	var idle time.Duration
	var groupStart string
	// withClient runs a subcommand with a client dialled from the shared
	// connection flags, closed after it; a connection it loses and
	// redials meanwhile is a line on stderr (dialReporting), unless
	// consume's --quiet. info is where those lines go, rejoin's too.
	var info *lockedWriter
	withClient := func(fn func(ctx context.Context, cmd *cobra.Command, c *client.Client) error) func(*cobra.Command, []string) error {
		return withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			// consume's numbers, before anything is dialed.
			if err := refuseNegativeFlags(cmd.Flags(), "count", "prefetch", "idle-exit"); err != nil {
				return err
			}
			info = infoWriter(&lockedWriter{w: cmd.ErrOrStderr()}, quiet)
			c, err := f.dialReporting(ctx, info)
			if err != nil {
				return err
			}
			defer c.Close()
			return fn(ctx, cmd, c)
		})
	}
	consume := &cobra.Command{
		Use:   "consume STREAM",
		Short: "Join the group, print each message (offset, attempt, payload) and ack it",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(ctx context.Context, cmd *cobra.Command, c *client.Client) error {
			var opts []client.ConsumerOption
			if prefetch > 0 {
				opts = append(opts, client.WithPrefetch(prefetch))
			}
			if name != "" {
				opts = append(opts, client.WithConsumerName(name))
			}
			if groupStart != "" {
				start, err := parseStart("--group-start", groupStart, time.Now())
				if err != nil {
					return err
				}
				opts = append(opts, client.NewGroupAt(start))
			}
			stream := cmd.Flags().Arg(0)
			co, err := c.Consumer(ctx, f.namespace, stream, group, opts...)
			if err != nil {
				return err
			}
			defer func() { co.Close() }()
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			for n := 0; count <= 0 || n < count; {
				nctx, cancel := ctx, context.CancelFunc(func() {})
				if idle > 0 {
					nctx, cancel = context.WithTimeout(ctx, idle)
				}
				m, err := co.Next(nctx)
				cancel()
				if errors.Is(err, client.ErrDisconnected) && ctx.Err() == nil {
					// The connection is lost (dialReporting said so): join
					// again once the broker is back. What this consumer
					// held and did not ack is delivered again.
					co.Close()
					if co, err = rejoin(ctx, info, func() (*client.Consumer, error) {
						return c.Consumer(ctx, f.namespace, stream, group, opts...)
					}); err != nil {
						if ctx.Err() != nil {
							return nil
						}
						return err
					}
					continue
				}
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
						return nil
					}
					return err
				}
				n++
				fmt.Fprintf(out, "offset=%d attempt=%d %s\n", m.Offset, m.Attempt, m.Payload)
				out.Flush()
				if nack {
					err = m.Nack(ctx, time.Second)
				} else {
					err = m.Ack(ctx)
				}
				if err != nil {
					if ctx.Err() != nil {
						// Interrupted during the ack: a normal end. If the
						// ack did not reach the broker, the message is
						// delivered again (at-least-once).
						return nil
					}
					if errors.Is(err, client.ErrDisconnected) {
						continue // delivered again; the next Next rejoins
					}
					return err
				}
			}
			return nil
		}),
	}
	consume.Flags().IntVar(&count, "count", 0, "exit after this many messages (0 = until interrupted)")
	consume.Flags().IntVar(&prefetch, "prefetch", 0, "unacked deliveries at a time (default: the broker's)")
	consume.Flags().StringVar(&name, "name", "", "consumer name (default: assigned by the broker)")
	consume.Flags().BoolVar(&nack, "nack", false, "nack every message instead of acking (redelivered after 1s; tests dead letters)")
	consume.Flags().DurationVar(&idle, "idle-exit", 0, "exit after this long without a message (0 = never)")
	addQuietFlag(consume.Flags(), &quiet, "connection lost, reconnected, consumer rejoined", "")
	consume.Flags().StringVar(&groupStart, "group-start", "", "where the group starts if this command creates it: earliest (default), latest (only new records), an offset, an RFC 3339 time or -5m; an existing group keeps its position")
	stats := &cobra.Command{
		Use:   "stats STREAM",
		Short: "Print the group's counters: members, in flight, lag, acked, redelivered, dead-lettered",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(ctx context.Context, cmd *cobra.Command, c *client.Client) error {
			st, err := c.QueueStats(ctx, f.namespace, cmd.Flags().Arg(0), group)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(),
				"members=%d in_flight=%d pending=%d lag=%d cursor=%d delivered=%d acked=%d nacked=%d redelivered=%d timed_out=%d dead_lettered=%d released=%d lost=%d\n",
				st.Members, st.InFlight, st.Pending, st.Lag, st.Cursor, st.Delivered, st.Acked, st.Nacked,
				st.Redelivered, st.TimedOut, st.DeadLettered, st.Released, st.Lost)
			return err
		}),
	}
	del := &cobra.Command{
		Use:   "delete STREAM",
		Short: "Delete the consumer group: its consumers end, its acks and attempt counts are forgotten (needs stream.manage)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(ctx context.Context, cmd *cobra.Command, c *client.Client) error {
			if err := c.DeleteQueueGroup(ctx, f.namespace, cmd.Flags().Arg(0), group); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s of %s\n", group, cmd.Flags().Arg(0))
			return err
		}),
	}
	cmd.AddCommand(consume, stats, del)
	return clientCmd(cmd, &f)
}

// rejoin calls join until it succeeds, ctx ends or it fails otherwise
// than for want of a connection (e.g. the group was deleted), waiting
// between attempts from 100ms doubling up to 2s. A rejoin is a line on
// stderr.
func rejoin(ctx context.Context, stderr io.Writer, join func() (*client.Consumer, error)) (*client.Consumer, error) {
	wait := 100 * time.Millisecond
	for {
		co, err := join()
		if err == nil {
			fmt.Fprintln(stderr, "felix: consumer rejoined its group")
			return co, nil
		}
		if !errors.Is(err, client.ErrDisconnected) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
