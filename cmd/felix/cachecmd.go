package main

import (
	"errors"
	"fmt"
	"math"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/client"
)

func newCacheCmd() *cobra.Command {
	var f clientFlags
	var cacheName string
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Read and write a cache: get, put, del, ttl, incr, decr, expire, persist, keys, flush",
	}
	cmd.PersistentFlags().StringVarP(&cacheName, "cache", "c", "demo", "cache name")
	run := func(fn func(cmd *cobra.Command, kv *client.Cache, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := f.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			cmd.SetContext(ctx)
			return fn(cmd, c.Cache(f.namespace, cacheName), args)
		}
	}
	var ttl time.Duration
	var ifAbsent bool
	put := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Store VALUE under KEY (prints the new version)",
		Args:  cobra.ExactArgs(2),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			var opts []client.PutOption
			if ttl < 0 {
				return fmt.Errorf("invalid --ttl %v: want a positive duration, or 0 for no expiry", ttl)
			}
			if ttl > 0 {
				opts = append(opts, client.WithTTL(ttl))
			}
			if ifAbsent {
				opts = append(opts, client.IfAbsent())
			}
			v, err := kv.Put(cmd.Context(), args[0], []byte(args[1]), opts...)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "OK version %d\n", v)
			return err
		}),
	}
	put.Flags().DurationVar(&ttl, "ttl", 0, "expire after this long (0 = never)")
	put.Flags().BoolVar(&ifAbsent, "if-absent", false, "store only if the key has no entry")
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value under KEY (exit status 1 and (nil) when missing)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			v, found, err := kv.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !found {
				fmt.Fprintln(cmd.OutOrStdout(), "(nil)")
				return errMissing
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
			return err
		}),
	}
	del := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY (prints 1 if it existed, else 0)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			ok, err := kv.Delete(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			n := 0
			if ok {
				n = 1
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), n)
			return err
		}),
	}
	ttlCmd := &cobra.Command{
		Use:   "ttl KEY",
		Short: "Print the remaining time to live of KEY (-1 no expiry, -2 missing, as Redis)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			d, has, found, err := kv.TTL(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			switch {
			case !found:
				_, err = fmt.Fprintln(cmd.OutOrStdout(), -2)
			case !has:
				_, err = fmt.Fprintln(cmd.OutOrStdout(), -1)
			default:
				_, err = fmt.Fprintln(cmd.OutOrStdout(), d)
			}
			return err
		}),
	}
	incr, decr := newIncrCmds(run)
	expire, persist, keys := newKeyCmds(run)
	// A value, a delta, a TTL or a key may be a negative number, given as
	// Redis takes it: felix cache put t -1, felix cache incr hits -3.
	for _, sub := range []*cobra.Command{put, get, del, ttlCmd, incr, decr, expire, persist, keys} {
		allowNegativeArgs(sub)
	}
	cmd.AddCommand(put, get, del, ttlCmd, incr, decr, expire, persist, keys, newCacheFlushCmd(run))
	return clientCmd(cmd, &f)
}

// newIncrCmds returns `cache incr KEY [DELTA]` and `cache decr KEY
// [DELTA]` (Redis's INCR/INCRBY and DECR/DECRBY), which print the new
// value. run wraps a subcommand with the client and the cache.
func newIncrCmds(run func(func(*cobra.Command, *client.Cache, []string) error) func(*cobra.Command, []string) error) (incr, decr *cobra.Command) {
	mk := func(name, short, example string, sign int64) *cobra.Command {
		var ttl time.Duration
		cmd := &cobra.Command{
			Use:     name + " KEY [DELTA]",
			Short:   short,
			Example: example,
			Args:    cobra.RangeArgs(1, 2),
			RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
				delta := int64(1)
				if len(args) == 2 {
					d, err := strconv.ParseInt(args[1], 10, 64)
					if err != nil || (sign < 0 && d == math.MinInt64) {
						return fmt.Errorf("invalid DELTA %q: want a signed 64-bit integer", args[1])
					}
					delta = d
				}
				if ttl < 0 {
					return fmt.Errorf("invalid --ttl %v: want a positive duration, or 0 for no expiry", ttl)
				}
				var opts []client.PutOption
				if ttl > 0 {
					opts = append(opts, client.WithTTL(ttl))
				}
				v, err := kv.Incr(cmd.Context(), args[0], sign*delta, opts...)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), v)
				return err
			}),
		}
		cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire a key the command creates after this long (0 = never); an existing key keeps its expiry")
		return cmd
	}
	incr = mk("incr", "Add DELTA (default 1) to the integer under KEY, atomically, and print the new value; a missing key counts as 0",
		"  felix cache incr hits\n  felix cache incr hits 10 --ttl 1m\n  felix cache incr hits -3", 1)
	decr = mk("decr", "Subtract DELTA (default 1) from the integer under KEY, atomically, and print the new value",
		"  felix cache decr stock\n  felix cache decr stock 5", -1)
	return incr, decr
}

// errMissing makes `felix cache get` exit non-zero on a miss.
var errMissing = errors.New("key not found")
