package main

import (
	"errors"
	"fmt"
	"os/signal"
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
		Short: "Read and write a cache: get, put, del, ttl",
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
	cmd.AddCommand(put, get, del, ttlCmd)
	return clientCmd(cmd, &f)
}

// errMissing makes `felix cache get` exit non-zero on a miss.
var errMissing = errors.New("key not found")
