package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/metrics"
)

// `felix status` prints what a running broker serves, from the JSON the
// dashboard reads (GET /api/overview on --metrics-addr): connections,
// streams with their rates, subscriptions, consumer groups, caches and
// request/reply services.
// It is what `nats server report`, `rabbitmqctl list_queues` and
// `redis-cli info` tell their users.

// maxOverviewBytes bounds the answer read: an overview holds at most
// metrics.MaxOverviewRows rows per list (some 200 KB at a thousand).
const maxOverviewBytes = 64 << 20

func newStatusCmd() *cobra.Command {
	var (
		addr     string
		caFile   string
		useTLS   bool
		asJSON   bool
		watch    bool
		count    int
		interval time.Duration
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print what a running broker serves: connections, streams and their rates, subscriptions, groups, caches, services",
		Long: `Print what a running broker serves, read from its dashboard's JSON
(GET /api/overview on --metrics-addr): connections; every stream (declared
by flags or by the control plane) with its next offset, events published
and delivered, rates, drops and subscriptions; subscriptions with their
queue and drops; consumer groups with their lag; caches with their entries
and hit rate; request/reply services with their responders, requests in
flight, request rate, replies, responder errors, timeouts and requests
refused for want of a responder (a service whose responders left is kept
for its counters, as is one asked while nobody served it).

Rates are measured between two reads --interval apart (0: one read, no
rates). Each list holds at most 1000 rows (the broker's bound); a cut list
is said so. --json prints the overview as the broker sent it.

--watch prints a new report every --interval until interrupted (or
--count reports), clearing the terminal before each when the output is
one, like top; a broker that does not answer meanwhile is reported and
asked again.`,
		Args: cobra.NoArgs,
		// Only the flags that say where and how to reach the broker read
		// their variables (shared with serve and the client commands), as
		// their help says: not --json, --interval, --count or --timeout.
		PreRunE: func(c *cobra.Command, _ []string) error {
			warnUnknownEnv(c)
			return applyEnvTo(c.Flags(), map[string]bool{"metrics-addr": true, "metrics-tls": true, "ca-file": true})
		},
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			if err := refuseNegativeFlags(cmd.Flags(), "interval", "count"); err != nil {
				return err
			}
			if watch && interval <= 0 {
				return errors.New("--watch needs an --interval above 0")
			}
			scheme, ca := "http", ""
			if useTLS {
				scheme, ca = "https", caFor(caFile, addr, false)
			}
			hc, err := httpClientWithCA(ca)
			if err != nil {
				return fmt.Errorf("--ca-file: %w", err)
			}
			url := scheme + "://" + addr + "/api/overview"
			ov, err := fetchOverview(ctx, hc, url, timeout)
			rates := interval > 0
			if err == nil && rates {
				// The first read starts the broker's rate measurement
				// (unless the dashboard is open); the second reads rates.
				// Interrupted meanwhile, the first read is the report.
				select {
				case <-ctx.Done():
					rates = false
				case <-time.After(interval):
					if ov2, err2 := fetchOverview(ctx, hc, url, timeout); ctx.Err() != nil {
						rates = false // interrupted during the second read
					} else {
						ov, err = ov2, err2
					}
				}
			}
			if err != nil && ctx.Err() != nil {
				return nil // interrupted (Ctrl-C) during a read: a normal end, as with --watch
			}
			if err != nil {
				if !useTLS && strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
					return fmt.Errorf("%w (the broker serves --metrics-addr %s over HTTPS: pass --metrics-tls)", err, addr)
				}
				return fmt.Errorf("%w (is the broker running with --metrics-addr %s?)", err, addr)
			}
			w := cmd.OutOrStdout()
			show := func(ov *metrics.Overview) error {
				if asJSON {
					enc := json.NewEncoder(w)
					enc.SetIndent("", "  ")
					return enc.Encode(ov)
				}
				return printOverview(w, ov, rates)
			}
			if err := show(ov); err != nil || !watch {
				return err
			}
			clear := isTerminal(w) && !asJSON
			for n := 1; count <= 0 || n < count; n++ {
				select {
				case <-ctx.Done():
					return nil // interrupted: a normal end
				case <-time.After(interval):
				}
				ov, err := fetchOverview(ctx, hc, url, timeout)
				if ctx.Err() != nil {
					return nil
				}
				if clear {
					fmt.Fprint(w, "\033[H\033[2J")
				} else if !asJSON {
					fmt.Fprintln(w)
				}
				if err != nil {
					fmt.Fprintf(w, "%s: %v (asking again in %s)\n", time.Now().Format(time.TimeOnly), err, interval)
					continue
				}
				if err := show(ov); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "metrics-addr", metrics.DefaultAddr, "the broker's --metrics-addr")
	fl.BoolVar(&useTLS, "metrics-tls", false, "read it over HTTPS (a broker with --metrics-tls)")
	fl.StringVar(&caFile, "ca-file", "", "with --metrics-tls, PEM file of the CA to trust besides the system's (default: "+devCertPath+" when it exists and the broker is local)")
	annotateEnv(fl)
	fl.BoolVar(&asJSON, "json", false, "print the overview as JSON")
	fl.DurationVar(&interval, "interval", time.Second, "measure rates over this long (0 = one read, no rates); with --watch, the time between reports")
	fl.BoolVar(&watch, "watch", false, "print a new report every --interval until interrupted")
	fl.IntVar(&count, "count", 0, "with --watch, stop after this many reports (0 = until interrupted)")
	fl.DurationVar(&timeout, "timeout", 10*time.Second, "give up on a read of the broker after this long")
	return cmd
}

// fetchOverview reads and decodes one overview, giving up after timeout.
// An answer without a status is not an overview.
func fetchOverview(ctx context.Context, hc *http.Client, url string, timeout time.Duration) (*metrics.Overview, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("status: GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	var ov metrics.Overview
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxOverviewBytes))
	if err := dec.Decode(&ov); err != nil {
		return nil, fmt.Errorf("status: GET %s: decode: %w", url, err)
	}
	if ov.Status == "" {
		return nil, fmt.Errorf("status: GET %s: the answer is not a broker's overview (no status)", url)
	}
	return &ov, nil
}

// printOverview writes ov as a header line and one table per non-empty
// list.
func printOverview(w io.Writer, ov *metrics.Overview, withRates bool) error {
	up := time.Duration(ov.UptimeSeconds * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "broker %s, up %s; connections: %d open (%d since start); subscriptions: %d\n",
		ov.Status, up, ov.Connections.Open, ov.Connections.Total, ov.Connections.Subscriptions)
	if ov.Truncated {
		fmt.Fprintf(w, "(a list had more than %d rows: only the first are shown)\n", metrics.MaxOverviewRows)
	}
	rate := func(v float64) string {
		if !withRates {
			return "-"
		}
		return fmt.Sprintf("%.0f", v)
	}
	section := func(title string, n int, header string, row func(i int) []string) error {
		if n == 0 {
			_, err := fmt.Fprintf(w, "\n%s: none\n", title)
			return err
		}
		fmt.Fprintf(w, "\n%s (%d)\n", title, n)
		rows := make([][]string, n)
		for i := range n {
			rows[i] = row(i)
		}
		return table(w, header, rows)
	}
	name := func(parts ...string) string { return strings.Join(parts, "/") }
	err := section("streams", len(ov.Streams), "STREAM\tSTORAGE\tNEXT OFFSET\tPUBLISHED\tPUBLISHED/S\tDELIVERED\tDELIVERED/S\tDROPPED\tSUBS", func(i int) []string {
		s := ov.Streams[i]
		storage := "memory"
		if s.Durable {
			storage = "durable"
		}
		return []string{name(s.Tenant, s.Namespace, s.Stream), storage, fmt.Sprint(s.NextOffset), fmt.Sprint(s.Published),
			rate(s.PublishRate), fmt.Sprint(s.Delivered), rate(s.DeliverRate), fmt.Sprint(s.Dropped), fmt.Sprint(s.Subscriptions)}
	})
	if err != nil {
		return err
	}
	err = section("subscriptions", len(ov.Subscribers), "ID\tSTREAM\tPOLICY\tQUEUED\tDELIVERED\tDROPPED", func(i int) []string {
		s := ov.Subscribers[i]
		queued := fmt.Sprintf("%d/%d", s.QueueLen, s.QueueCap)
		if s.CatchingUp {
			queued += " (replaying)"
		}
		return []string{fmt.Sprint(s.ID), name(s.Tenant, s.Namespace, s.Stream), s.Policy, queued, fmt.Sprint(s.Delivered), fmt.Sprint(s.Dropped)}
	})
	if err != nil {
		return err
	}
	err = section("consumer groups", len(ov.Groups), "STREAM\tGROUP\tMEMBERS\tLAG\tIN FLIGHT\tPENDING\tDELIVERED\tACKED\tREDELIVERED\tDEAD-LETTERED", func(i int) []string {
		g := ov.Groups[i]
		return []string{name(g.Tenant, g.Namespace, g.Stream), g.Group, fmt.Sprint(g.Members), fmt.Sprint(g.Lag), fmt.Sprint(g.InFlight),
			fmt.Sprint(g.Pending), fmt.Sprint(g.Delivered), fmt.Sprint(g.Acked), fmt.Sprint(g.Redelivered), fmt.Sprint(g.DeadLettered)}
	})
	if err != nil {
		return err
	}
	err = section("caches", len(ov.Caches), "CACHE\tENTRIES\tBYTES\tHITS\tMISSES\tHIT RATE\tEVICTIONS\tEXPIRATIONS", func(i int) []string {
		c := ov.Caches[i]
		return []string{name(c.Tenant, c.Namespace, c.Cache), fmt.Sprint(c.Entries), fmt.Sprint(c.Bytes), fmt.Sprint(c.Hits),
			fmt.Sprint(c.Misses), fmt.Sprintf("%.1f%%", 100*c.HitRate), fmt.Sprint(c.Evictions), fmt.Sprint(c.Expirations)}
	})
	if err != nil {
		return err
	}
	return section("services", len(ov.Services), "SERVICE\tRESPONDERS\tIN FLIGHT\tREQUESTS\tREQUESTS/S\tREPLIES\tERRORS\tTIMEOUTS\tNO RESPONDERS\tGONE\tABANDONED", func(i int) []string {
		s := ov.Services[i]
		return []string{name(s.Tenant, s.Namespace, s.Service), fmt.Sprint(s.Responders), fmt.Sprint(s.InFlight), fmt.Sprint(s.Requests),
			rate(s.RequestRate), fmt.Sprint(s.Replies), fmt.Sprint(s.ResponderErrors), fmt.Sprint(s.Timeouts), fmt.Sprint(s.NoResponders),
			fmt.Sprint(s.ResponderGone), fmt.Sprint(s.Abandoned)}
	})
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
