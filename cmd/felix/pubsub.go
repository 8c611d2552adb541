package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/wire"
)

// maxRawMessage bounds `felix pub --raw`: the broker's default frame limit.
const maxRawMessage = 16 << 20

func newPubCmd() *cobra.Command {
	var f clientFlags
	var repeat int
	var noAck, raw bool
	cmd := &cobra.Command{
		Use:   "pub STREAM [MESSAGE...]",
		Short: "Publish messages to a stream (from arguments, or one per line of stdin)",
		Long: `Publish messages to a stream: each MESSAGE argument is one message; with
none, each line of stdin is one (without its line ending), or with --raw all
of stdin is one message, byte for byte (binary data, newlines).
Every message is acknowledged by the broker unless --no-ack.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if repeat < 1 {
				return fmt.Errorf("--repeat must be at least 1")
			}
			if raw && len(args) > 1 {
				return fmt.Errorf("--raw publishes stdin: give no MESSAGE arguments with it")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := f.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			stream := args[0]
			var opts []client.PublishOption
			if noAck {
				opts = append(opts, client.WithAck(wire.AckNone))
			}
			n := 0
			send := func(msg []byte) error {
				for range repeat {
					if err := c.Publish(ctx, f.namespace, stream, msg, opts...); err != nil {
						return err
					}
					n++
				}
				return nil
			}
			switch {
			case raw:
				msg, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxRawMessage+1))
				if err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				if len(msg) > maxRawMessage {
					return fmt.Errorf("--raw: stdin holds more than %d bytes, more than one publish frame holds; split it into several messages (or drop --raw to send one per line)", maxRawMessage)
				}
				if err := send(msg); errors.Is(err, wire.ErrFrameTooLarge) {
					return fmt.Errorf("--raw: %d bytes do not fit in one publish frame of at most %d bytes with its header and names; split it into several messages: %w", len(msg), maxRawMessage, err)
				} else if err != nil {
					return err
				}
			case len(args) > 1:
				for _, m := range args[1:] {
					if err := send([]byte(m)); err != nil {
						return err
					}
				}
			default:
				sc := bufio.NewScanner(cmd.InOrStdin())
				sc.Buffer(make([]byte, 64<<10), 16<<20)
				for sc.Scan() {
					if err := send(sc.Bytes()); err != nil {
						return err
					}
				}
				if err := sc.Err(); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "published %d message(s) to %s/%s/%s\n", n, f.tenant, f.namespace, stream)
			return nil
		},
	}
	cmd.Flags().IntVar(&repeat, "repeat", 1, "publish each message this many times")
	cmd.Flags().BoolVar(&noAck, "no-ack", false, "fire and forget (do not wait for the broker's ack)")
	cmd.Flags().BoolVar(&raw, "raw", false, "publish all of stdin as one message, byte for byte, instead of one message per line")
	allowNegativeArgs(cmd) // felix pub temps -3
	return clientCmd(cmd, &f)
}

func newSubCmd() *cobra.Command {
	var f clientFlags
	var count int
	var asJSON, countOnly, quiet bool
	var from string
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "sub STREAM",
		Short: "Subscribe to a stream and print (or count) its events",
		Long: `Subscribe to a stream and print each event's payload on a line of its own,
or with --json one JSON object per line: tenant, namespace, stream, offset,
payload (as text, invalid UTF-8 replaced) and payload_b64 (the exact bytes).

It runs until --count events, --idle-exit without one, or Ctrl-C / SIGTERM,
and then exits 0 with everything received printed (--count-only: the number).
Events it knows it missed (gaps in the offsets: dropped by the broker for a
slow subscriber, or no longer retained when a lost connection resumed) are
reported on stderr at exit as "felix: missed N events"; stdout and the exit
status stay the same. A lost connection is redialed until it comes back,
and the subscription resumes; stderr says so as it happens, with
"felix: connection lost (event): <error>; reconnecting" and then
"felix: reconnected (event)" (--quiet leaves these two lines out).

--from says where to start: latest (the default: only new events),
earliest (the oldest event the stream retains), an offset (1234), a time
in RFC 3339 (2026-11-30T10:00:00Z, 2026-11-30T11:00:00+01:00) or a negative
duration back from now (-5m, -1h30m): the first event published at or
after that time, and everything after it. A time before the oldest
retained event starts at the oldest; one in the future waits for new
events. Times are to the millisecond and need a broker with the
start-time extension.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseNegativeFlags(cmd.Flags(), "count", "idle-exit"); err != nil {
				return err
			}
			start, err := parseFrom(from, time.Now())
			if err != nil {
				return err
			}
			var sopts []client.SubscribeOption
			switch start.Kind {
			case wire.StartEarliest:
				sopts = append(sopts, client.FromEarliest())
			case wire.StartOffset:
				sopts = append(sopts, client.FromOffset(start.Offset))
			case wire.StartTime:
				sopts = append(sopts, client.FromTime(start.Time()))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			stderr := &lockedWriter{w: cmd.ErrOrStderr()}
			c, err := f.dialReporting(ctx, infoWriter(stderr, quiet))
			if err != nil {
				return err
			}
			defer c.Close()
			sub, err := c.Subscribe(ctx, f.namespace, args[0], sopts...)
			if err != nil {
				return err
			}
			defer sub.Close()
			out := bufio.NewWriter(cmd.OutOrStdout())
			var gaps missedCounter
			defer func() {
				out.Flush()
				if gaps.missed > 0 {
					fmt.Fprintf(stderr, "felix: missed %d events\n", gaps.missed)
				}
			}()
			enc := json.NewEncoder(out)
			n := 0
			for count <= 0 || n < count {
				nctx, cancel := ctx, context.CancelFunc(func() {})
				if idle > 0 {
					nctx, cancel = context.WithTimeout(ctx, idle)
				}
				ev, err := sub.Next(nctx)
				cancel()
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
						break // interrupted or idle
					}
					return err
				}
				n++
				gaps.see(ev)
				switch {
				case countOnly:
				case asJSON:
					rec := map[string]any{"tenant": f.tenant, "namespace": ev.Namespace, "stream": ev.Stream,
						"payload": string(ev.Payload), "payload_b64": base64.StdEncoding.EncodeToString(ev.Payload)}
					if ev.HasOffset {
						rec["offset"] = ev.Offset
					}
					if err := enc.Encode(rec); err != nil {
						return err
					}
				default:
					out.Write(ev.Payload)
					out.WriteByte('\n')
				}
				if out.Buffered() > 32<<10 || !countOnly {
					out.Flush()
				}
			}
			if countOnly {
				fmt.Fprintf(out, "%d\n", n)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&count, "count", 0, "exit after this many events (0 = run until interrupted)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object per event")
	fl.BoolVar(&countOnly, "count-only", false, "print only the number of events received, at exit")
	fl.StringVar(&from, "from", "latest", "where to start: latest, earliest, an offset, an RFC 3339 time (2026-11-30T10:00:00Z) or a negative duration back from now (-5m)")
	fl.DurationVar(&idle, "idle-exit", 0, "exit after this long without an event (0 = never)")
	addQuietFlag(fl, &quiet, "connection lost, reconnected", `"missed N events"`)
	return clientCmd(cmd, &f)
}

// parseFrom reads `felix sub --from`: latest (or empty), earliest, an
// offset, an RFC 3339 time, or a negative duration before now.
func parseFrom(s string, now time.Time) (wire.StartPosition, error) {
	return parseStart("--from", s, now)
}

// parseStart is parseFrom for the flag named flag (errors name it).
func parseStart(flag, s string, now time.Time) (wire.StartPosition, error) {
	switch s {
	case "", "latest":
		return wire.StartPosition{Kind: wire.StartLatest}, nil
	case "earliest":
		return wire.StartPosition{Kind: wire.StartEarliest}, nil
	}
	if off, err := strconv.ParseUint(s, 10, 64); err == nil {
		return wire.StartPosition{Kind: wire.StartOffset, Offset: off}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return wire.StartAt(t), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d >= 0 {
			return wire.StartPosition{}, fmt.Errorf("%s %q: a duration goes back from now: write it negative, as -5m", flag, s)
		}
		return wire.StartAt(now.Add(d)), nil
	}
	return wire.StartPosition{}, fmt.Errorf("%s %q: want latest, earliest, an offset, an RFC 3339 time (2026-11-30T10:00:00Z) or a negative duration (-5m)", flag, s)
}

// missedCounter adds up the gaps in the offsets of the events a command
// printed: events the broker dropped for a slow subscriber, or no longer
// retained when the subscription resumed after a lost connection (what
// client.Subscription.Missed counts, but only up to the last event
// printed, so --count does not report gaps among events left unread).
type missedCounter struct {
	last   uint64
	seen   bool
	missed uint64
}

func (m *missedCounter) see(ev client.Event) {
	if !ev.HasOffset {
		return
	}
	if m.seen && ev.Offset > m.last+1 {
		m.missed += ev.Offset - m.last - 1
	}
	m.last, m.seen = ev.Offset, true
}
