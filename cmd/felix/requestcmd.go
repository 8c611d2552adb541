package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/client"
)

// `felix request` and `felix reply` are request/reply from a shell, as
// `nats request` and `nats reply` are: one asks a service, the other
// answers it.

func newRequestCmd() *cobra.Command {
	var f clientFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "request SERVICE [DATA]",
		Short: "Ask a service (request/reply) and print its reply",
		Long: `Send DATA (default: nothing) to one responder of SERVICE in --namespace and
print its reply and a newline. Fails (exit 1) when nobody serves it
(no responders), when no reply comes within --timeout, or with the
responder's own error.`,
		Example: "  felix reply time --text now &\n  felix request time",
		Args:    cobra.RangeArgs(1, 2),
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			args := cmd.Flags().Args()
			var data []byte
			if len(args) == 2 {
				data = []byte(args[1])
			}
			c, err := f.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			reply, err := c.Request(ctx, f.namespace, args[0], data)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", reply)
			return err
		}),
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up on the reply after this long (the broker caps it at 60s)")
	allowNegativeArgs(cmd) // felix request thermostat -3
	return clientCmd(cmd, &f)
}

func newReplyCmd() *cobra.Command {
	var f clientFlags
	var text string
	var count, maxInFlight int
	var quiet bool
	cmd := &cobra.Command{
		Use:   "reply SERVICE",
		Short: "Answer the requests to a service: print each and reply with --text, or echo it",
		Long: `Serve SERVICE in --namespace: print each request's data on a line and answer
it with --text, or with the request's own data when --text is not given
(an echo service). Several felix reply of one service share its requests,
round-robin. Runs until interrupted, or until --count requests are
answered. A lost connection is redialed until it comes back; stderr says
so as it happens (not with --quiet).`,
		Args: cobra.ExactArgs(1),
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			echo := !cmd.Flags().Changed("text")
			if err := refuseNegativeFlags(cmd.Flags(), "count", "max-in-flight"); err != nil {
				return err
			}
			c, err := f.dialReporting(ctx, infoWriter(&lockedWriter{w: cmd.ErrOrStderr()}, quiet))
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w := cmd.OutOrStdout()
			var mu sync.Mutex
			var answered atomic.Int64
			handler := func(_ context.Context, req []byte) ([]byte, error) {
				if count > 0 && answered.Add(1) > int64(count) {
					return nil, errors.New("this responder is stopping")
				}
				mu.Lock()
				fmt.Fprintf(w, "%s\n", req)
				mu.Unlock()
				if count > 0 && answered.Load() == int64(count) {
					defer cancel() // once this reply is on its way
				}
				if echo {
					return req, nil
				}
				return []byte(text), nil
			}
			var opts []client.ServeOption
			if maxInFlight > 0 {
				opts = append(opts, client.WithMaxInFlight(maxInFlight))
			}
			svc, err := c.Serve(ctx, f.namespace, cmd.Flags().Arg(0), handler, opts...)
			if err != nil {
				return err
			}
			<-svc.Done()
			if err := svc.Err(); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&text, "text", "", "reply with this text (default: echo each request's data)")
	fl.IntVar(&count, "count", 0, "exit after answering this many requests (0 = until interrupted)")
	fl.IntVar(&maxInFlight, "max-in-flight", 0, "requests handled at once (default: the broker's, 64)")
	addQuietFlag(fl, &quiet, "connection lost, reconnected", "")
	return clientCmd(cmd, &f)
}
