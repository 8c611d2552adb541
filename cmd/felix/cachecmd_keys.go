package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/client"
)

// newKeyCmds returns `cache expire KEY TTL`, `cache persist KEY` (Redis's
// EXPIRE and PERSIST, printing 1 if the key exists, else 0) and `cache
// keys [PREFIX]` (Redis's SCAN MATCH PREFIX* to its end: every key, one a
// line, in byte order). run wraps a subcommand with the client and the
// cache.
func newKeyCmds(run func(func(*cobra.Command, *client.Cache, []string) error) func(*cobra.Command, []string) error) (expire, persist, keys *cobra.Command) {
	printFound := func(cmd *cobra.Command, found bool) error {
		n := 0
		if found {
			n = 1
		}
		_, err := fmt.Fprintln(cmd.OutOrStdout(), n)
		return err
	}
	expire = &cobra.Command{
		Use:   "expire KEY TTL",
		Short: "Make KEY expire TTL from now (prints 1, or 0 if KEY does not exist: nothing is created)",
		Long: "Make KEY expire TTL from now, whatever its expiry was, and print 1, or 0 if KEY does not\n" +
			"exist (nothing is created). TTL is a duration (90s, 10m, 1h30m) or, as with Redis's EXPIRE,\n" +
			"a number of seconds. It must be positive: unlike Redis, a TTL of 0 or less is refused\n" +
			"rather than deleting the key (felix cache persist removes an expiry, felix cache del deletes).",
		Example: "  felix cache expire session:42 30m\n  felix cache expire session:42 60",
		Args:    cobra.ExactArgs(2),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			ttl, err := parseExpireTTL(args[1])
			if err != nil {
				return err
			}
			found, err := kv.Expire(cmd.Context(), args[0], ttl)
			if err != nil {
				return err
			}
			return printFound(cmd, found)
		}),
	}
	persist = &cobra.Command{
		Use:   "persist KEY",
		Short: "Remove KEY's expiry (prints 1, or 0 if KEY does not exist)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			found, err := kv.Persist(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printFound(cmd, found)
		}),
	}
	keys = &cobra.Command{
		Use:   "keys [PREFIX]",
		Short: "Print every live key (that starts with PREFIX), one a line, in byte order",
		Long: "Print every live key of the cache (that starts with PREFIX), one a line, in byte order,\n" +
			"paging through the cache with cache_scan as Redis's SCAN does: a key that exists for\n" +
			"the whole listing is printed exactly once; keys written or deleted meanwhile may or may not be.\n" +
			"A key with a character that is not printable (a newline, a control character) or that starts\n" +
			"with a double quote is printed as a double-quoted Go string (\"a\\nb\"), so each key stays one line.",
		Example: "  felix cache keys\n  felix cache keys user:",
		Args:    cobra.MaximumNArgs(1),
		RunE: run(func(cmd *cobra.Command, kv *client.Cache, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			w := cmd.OutOrStdout()
			for key, err := range kv.Keys(cmd.Context(), prefix) {
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintln(w, printableKey(key)); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	return expire, persist, keys
}

// parseExpireTTL reads `cache expire`'s TTL: a Go duration, or whole
// seconds as Redis's EXPIRE takes them; it must be positive.
func parseExpireTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.ParseInt(s, 10, 64); nerr == nil {
		// Bounded before it is multiplied: n × 10⁹ would wrap around for
		// |n| over some 292 years, a negative count into a positive TTL.
		d, err = time.Duration(max(min(n, maxExpireSeconds), 0))*time.Second, nil
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid TTL %q: want a positive duration (90s, 10m) or seconds; "+
			"felix cache persist KEY removes an expiry, felix cache del KEY deletes the key", s)
	}
	return d, nil
}

// maxExpireSeconds keeps a TTL given in seconds within a time.Duration
// (the broker cuts TTLs to 100 years anyway).
const maxExpireSeconds = 100 * 365 * 24 * 3600

// printableKey is key as `cache keys` prints it: as it is, or quoted
// (strconv.Quote) when it holds a character that is not printable (which
// could break the one-key-a-line output or drive the terminal) or starts
// with a double quote (which would read as quoted).
func printableKey(key string) string {
	if strings.HasPrefix(key, `"`) || strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(key)
	}
	return key
}
