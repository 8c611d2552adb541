package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/controlplane"
)

// `felix admin` declares tenants, namespaces, streams and caches through
// the control plane's HTTP API (docs/controlplane.md): what `nats stream
// add` or `rabbitmqadmin declare queue` do, without curl and a token by
// hand. Each subcommand is one call of controlplane.Client.

// cpAPIFlags reach a control plane's API: the URL wins over the address;
// the token defaults to the admin token in the data dir.
type cpAPIFlags struct {
	dataDir, addr, url, token, caFile string
}

// register adds the flags of cpAPIFlags to fl, with dataDirUsage as the
// help of --data-dir.
func (f *cpAPIFlags) register(fl *pflag.FlagSet, dataDirUsage string) {
	fl.StringVar(&f.dataDir, "data-dir", "felix-data", dataDirUsage)
	fl.StringVar(&f.addr, "controlplane-addr", "127.0.0.1:8443", "address of the control-plane API (as felix serve's --controlplane-addr)")
	fl.StringVar(&f.url, "controlplane-url", "", "base URL of the control-plane API (http:// or https://); overrides --controlplane-addr")
	fl.StringVar(&f.token, "controlplane-token", "", "admin credential (Bearer) of that API (default: the token in <data-dir>/admin-token)")
	fl.StringVar(&f.caFile, "controlplane-ca-file", "", "PEM file of the CA that signs an https API's certificate, trusted besides the system's (default: <data-dir>/dev-cert.pem when it exists and the API is local)")
}

// baseURL is the API's base URL: --controlplane-url, else http:// and
// --controlplane-addr.
func (f cpAPIFlags) baseURL() (string, error) {
	if u := strings.TrimRight(f.url, "/"); u != "" {
		return u, nil
	}
	if f.addr == "" || f.addr == "off" {
		return "", errors.New("no control-plane API to ask (--controlplane-addr off): give --controlplane-url")
	}
	return "http://" + f.addr, nil
}

// adminToken is --controlplane-token, else the data dir's admin token.
func (f cpAPIFlags) adminToken() (string, error) {
	if f.token != "" {
		return f.token, nil
	}
	b, err := os.ReadFile(filepath.Join(f.dataDir, adminTokenFile))
	if err != nil {
		return "", fmt.Errorf("no --controlplane-token, and the data dir's admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// httpClient is the HTTP client for base: with --controlplane-ca-file,
// or for a local https API the data dir's development certificate when it
// is there (as the QUIC commands trust it), trusted besides the system's
// CAs.
func (f cpAPIFlags) httpClient(base string) (*http.Client, error) {
	ca := f.caFile
	if u, err := url.Parse(base); ca == "" && err == nil && u.Scheme == "https" && isLoopback(net.JoinHostPort(u.Hostname(), "0")) {
		if dev := filepath.Join(f.dataDir, "dev-cert.pem"); fileExists(dev) {
			ca = dev
		}
	}
	hc, err := httpClientWithCA(ca)
	if err != nil {
		return nil, fmt.Errorf("--controlplane-ca-file: %w", err)
	}
	return hc, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// client returns a controlplane.Client for the flags whose requests give
// up after timeout (0: the HTTP client's default, 10 s).
func (f cpAPIFlags) client(timeout time.Duration) (*controlplane.Client, error) {
	base, err := f.baseURL()
	if err != nil {
		return nil, err
	}
	token, err := f.adminToken()
	if err != nil {
		return nil, err
	}
	hc, err := f.httpClient(base)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		hc.Timeout = timeout
	}
	return controlplane.NewClient(base, token, hc), nil
}

// httpsHint is what to do when an answer (status, message) says that
// plain HTTP reached an API served over HTTPS (felix serve
// --controlplane-tls); "" for any other answer.
func httpsHint(base string, status int, message string) string {
	if status != http.StatusBadRequest || !strings.Contains(message, "HTTP request to an HTTPS server") {
		return ""
	}
	return " (the API is served over HTTPS: give --controlplane-url https://" + strings.TrimPrefix(base, "http://") + ")"
}

// adminFlags are the flags every `felix admin` subcommand takes.
type adminFlags struct {
	cp                cpAPIFlags
	tenant, namespace string
	json              bool
	timeout           time.Duration
}

func newAdminCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Declare tenants, namespaces, streams and caches through the control-plane API",
		Long: `Declare, list, change and delete tenants, namespaces, streams and caches
through the control-plane API of a running broker (felix serve embeds one on
--controlplane-addr, 127.0.0.1:8443) or of a standalone felix controlplane.
The credential is --controlplane-token, or the admin token in
<data-dir>/admin-token when run beside the broker's data dir.

Objects declared here are the control plane's: a broker applies them within
moments, and deleting a stream deletes its log. Streams and caches declared
by felix serve flags (including the development defaults) are not listed
here and cannot be deleted here (docs/controlplane.md).

  felix admin tenant add acme
  felix admin namespace add shop --tenant acme
  felix admin stream add orders --tenant acme -n shop --durable --retention-age 168h
  felix admin stream ls --tenant acme -n shop
  felix admin cache add sessions --tenant acme -n shop --capacity-bytes 67108864`,
	}
	pf := cmd.PersistentFlags()
	f.cp.register(pf, "data directory whose admin-token file is the default credential")
	pf.StringVar(&f.tenant, "tenant", "default", "tenant of the namespace, stream or cache")
	pf.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of the stream or cache")
	// Only the flags that say where and as whom read FELIX_* variables
	// (shared with serve and the client commands), not --json or
	// --timeout.
	annotateEnv(pf)
	envFlags := map[string]bool{}
	pf.VisitAll(func(fl *pflag.Flag) { envFlags[fl.Name] = fl.Name != "help" })
	pf.BoolVar(&f.json, "json", false, "print JSON (the objects as the API returns them)")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on the API after this long (ls: on each page's request)")
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		warnUnknownEnv(c)
		return applyEnvTo(c.Flags(), envFlags)
	}
	cmd.AddCommand(newAdminTenantCmd(&f), newAdminNamespaceCmd(&f), newAdminStreamCmd(&f), newAdminCacheCmd(&f))
	return cmd
}

// run returns a RunE that calls fn with a client of the API and a context
// bounded by --timeout and cancelled by SIGINT or SIGTERM.
func (f *adminFlags) run(fn func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return f.runWith(true, fn)
}

// runEach is run for commands of many requests (ls, page by page):
// --timeout bounds each request (the HTTP client's timeout), not the
// whole command, so a long list is not cut short.
func (f *adminFlags) runEach(fn func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return f.runWith(false, fn)
}

func (f *adminFlags) runWith(deadline bool, fn func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			if err := checkTimeout(f.timeout); err != nil {
				return err
			}
			c, err := f.cp.client(f.timeout)
			if err != nil {
				return err
			}
			if deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, f.timeout)
				defer cancel()
			}
			if err := fn(ctx, c, cmd.OutOrStdout(), args); err != nil {
				return f.adminError(c, err)
			}
			return nil
		})(cmd, args)
	}
}

// adminError adds what to do to the API's refusals of the credential and
// to plain HTTP sent to HTTPS.
func (f *adminFlags) adminError(c *controlplane.Client, err error) error {
	switch {
	case errors.Is(err, controlplane.ErrUnauthorized), errors.Is(err, controlplane.ErrForbidden):
		return fmt.Errorf("%w (at %s: give the admin token with --controlplane-token, or run beside the broker's data dir, --data-dir)", err, c.BaseURL())
	}
	var apiErr *controlplane.APIError
	if errors.As(err, &apiErr) {
		if hint := httpsHint(c.BaseURL(), apiErr.Status, apiErr.Message); hint != "" {
			return fmt.Errorf("%w%s", err, hint)
		}
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return fmt.Errorf("%w (at %s: give the PEM file of the CA that signed the API's certificate with --controlplane-ca-file)", err, c.BaseURL())
	}
	return err
}

// print writes v as indented JSON with --json, else calls text.
func (f *adminFlags) print(w io.Writer, v any, text func(w io.Writer) error) error {
	if !f.json {
		return text(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes a header and rows through a tabwriter.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// adminPageSize is the page size `ls` asks for.
const adminPageSize = 500

// adminLs is an `ls` subcommand: all(pageSize) iterates over the list page
// by page; each item is printed as it comes, as a row(item) of a table
// under header (flushed after each page, so columns are aligned within a
// page), or with --json as an element of one JSON array (the shape of
// before paging, written as it comes). --limit N stops after N items.
func adminLs[T any](f *adminFlags, short, header string, all func(ctx context.Context, c *controlplane.Client, pageSize int) iter.Seq2[T, error], row func(T) []string) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use: "ls", Short: short, Args: cobra.NoArgs,
		RunE: f.runEach(func(ctx context.Context, c *controlplane.Client, w io.Writer, _ []string) error {
			if limit < 0 {
				return errors.New("--limit must not be negative")
			}
			pageSize := adminPageSize
			if limit > 0 {
				pageSize = min(pageSize, limit)
			}
			out := lsWriter[T]{json: f.json, w: w, header: header, row: row, flushEvery: pageSize}
			n := 0
			for it, err := range all(ctx, c, pageSize) {
				if err != nil {
					// A tenant or namespace the control plane lacks holds
					// nothing it declared (a fresh broker's default/default
					// is declared by flags): an empty list, said so, not a
					// failure.
					if !out.started && errors.Is(err, controlplane.ErrNotFound) {
						return out.missing(err)
					}
					// What was printed stays; with --json the array is
					// left open, so that it does not parse as the whole list.
					out.flush()
					return err
				}
				if err := out.item(it); err != nil {
					return err
				}
				if n++; limit > 0 && n >= limit {
					break
				}
			}
			return out.end()
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("print only the first N (0: all); the list is read %d at a time", adminPageSize))
	return cmd
}

// lsWriter prints a list as it is read: a table (header, then a row per
// item) or one indented JSON array, the same bytes as the whole list
// encoded at once.
type lsWriter[T any] struct {
	json       bool
	w          io.Writer
	header     string
	row        func(T) []string
	flushEvery int

	tw      *tabwriter.Writer
	started bool
	n       int
}

func (l *lsWriter[T]) start() error {
	if l.started {
		return nil
	}
	l.started = true
	if l.json {
		_, err := io.WriteString(l.w, "[\n")
		return err
	}
	l.tw = tabwriter.NewWriter(l.w, 0, 0, 2, ' ', 0)
	_, err := fmt.Fprintln(l.tw, l.header)
	return err
}

func (l *lsWriter[T]) item(it T) error {
	if err := l.start(); err != nil {
		return err
	}
	l.n++
	if l.json {
		b, err := json.MarshalIndent(it, "  ", "  ")
		if err != nil {
			return err
		}
		sep := "  "
		if l.n > 1 {
			sep = ",\n  "
		}
		_, err = io.WriteString(l.w, sep+string(b))
		return err
	}
	if _, err := fmt.Fprintln(l.tw, strings.Join(l.row(it), "\t")); err != nil {
		return err
	}
	if l.n%l.flushEvery == 0 {
		return l.tw.Flush()
	}
	return nil
}

// flush writes out the table rows buffered so far.
func (l *lsWriter[T]) flush() {
	if l.tw != nil {
		l.tw.Flush()
	}
}

// end closes the list: the table, or the JSON array ("[]" when empty).
func (l *lsWriter[T]) end() error {
	if l.json && !l.started {
		_, err := io.WriteString(l.w, "[]\n")
		return err
	}
	if err := l.start(); err != nil {
		return err
	}
	if l.json {
		_, err := io.WriteString(l.w, "\n]\n")
		return err
	}
	return l.tw.Flush()
}

// missing says that the list's tenant or namespace does not exist: [] with
// --json, else a line.
func (l *lsWriter[T]) missing(err error) error {
	if l.json {
		_, werr := io.WriteString(l.w, "[]\n")
		return werr
	}
	_, werr := fmt.Fprintf(l.w, "none: %v (streams and caches declared by felix serve flags are not listed here)\n", err)
	return werr
}

// adminInfo is an `info NAME` subcommand: get, printed as JSON.
func adminInfo[T any](f *adminFlags, use, short string, get func(context.Context, *controlplane.Client, string) (T, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
			v, err := get(ctx, c, args[0])
			if err != nil {
				return err
			}
			g := *f
			g.json = true
			return g.print(w, v, nil)
		}),
	}
}

// adminRm is an `rm NAME` subcommand: del deletes and names what it
// deleted ("stream t/ns/s").
func adminRm(f *adminFlags, use, short string, del func(context.Context, *controlplane.Client, string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
			what, err := del(ctx, c, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "deleted %s\n", what)
			return err
		}),
	}
}

// ensureNamespace declares --tenant and --namespace when the control
// plane does not have them, saying so on w (unless --json), so that
// `stream add` and `cache add` work on a fresh broker, whose development
// namespace default/default is declared by flags, not in the store.
func (f *adminFlags) ensureNamespace(ctx context.Context, c *controlplane.Client, w io.Writer) error {
	say := func(format string, args ...any) {
		if !f.json {
			fmt.Fprintf(w, format, args...)
		}
	}
	// The namespace first: a credential for one tenant may not create
	// tenants, and needs to only when the tenant is missing.
	ns := controlplane.Namespace{TenantID: f.tenant, Namespace: f.namespace}
	_, err := c.CreateNamespace(ctx, ns)
	if errors.Is(err, controlplane.ErrNotFound) {
		if _, err = c.CreateTenant(ctx, controlplane.Tenant{TenantID: f.tenant}); err != nil && !errors.Is(err, controlplane.ErrExists) {
			return err
		}
		if err == nil {
			say("created tenant %s\n", f.tenant)
		}
		_, err = c.CreateNamespace(ctx, ns)
	}
	switch {
	case err == nil:
		say("created namespace %s\n", f.nsKey())
	case !errors.Is(err, controlplane.ErrExists):
		return err
	}
	return nil
}

func (f *adminFlags) nsKey() controlplane.NamespaceKey {
	return controlplane.NamespaceKey{TenantID: f.tenant, Namespace: f.namespace}
}

func newAdminTenantCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Add, list or delete tenants"}
	var display string
	add := &cobra.Command{
		Use: "add TENANT", Short: "Declare a tenant", Args: cobra.ExactArgs(1),
		RunE: f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
			t, err := c.CreateTenant(ctx, controlplane.Tenant{TenantID: args[0], DisplayName: display})
			if err != nil {
				return err
			}
			return f.print(w, t, func(w io.Writer) error { _, err := fmt.Fprintf(w, "created tenant %s\n", t.TenantID); return err })
		}),
	}
	add.Flags().StringVar(&display, "display-name", "", "display name")
	ls := adminLs(f, "List the tenants", "TENANT\tDISPLAY NAME",
		func(ctx context.Context, c *controlplane.Client, pageSize int) iter.Seq2[controlplane.Tenant, error] {
			return c.AllTenants(ctx, pageSize)
		},
		func(t controlplane.Tenant) []string { return []string{t.TenantID, t.DisplayName} })
	rm := adminRm(f, "rm TENANT", "Delete a tenant with its namespaces, streams (and their logs) and caches",
		func(ctx context.Context, c *controlplane.Client, name string) (string, error) {
			return "tenant " + name, c.DeleteTenant(ctx, name)
		})
	cmd.AddCommand(add, ls, rm)
	return cmd
}

func newAdminNamespaceCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "namespace", Short: "Add, list or delete the namespaces of --tenant"}
	var display string
	add := &cobra.Command{
		Use: "add NAMESPACE", Short: "Declare a namespace in --tenant", Args: cobra.ExactArgs(1),
		RunE: f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
			n, err := c.CreateNamespace(ctx, controlplane.Namespace{TenantID: f.tenant, Namespace: args[0], DisplayName: display})
			if err != nil {
				return err
			}
			return f.print(w, n, func(w io.Writer) error { _, err := fmt.Fprintf(w, "created namespace %s\n", n.Key()); return err })
		}),
	}
	add.Flags().StringVar(&display, "display-name", "", "display name")
	ls := adminLs(f, "List the namespaces of --tenant", "NAMESPACE\tDISPLAY NAME",
		func(ctx context.Context, c *controlplane.Client, pageSize int) iter.Seq2[controlplane.Namespace, error] {
			return c.AllNamespaces(ctx, f.tenant, pageSize)
		},
		func(n controlplane.Namespace) []string { return []string{n.Namespace, n.DisplayName} })
	rm := adminRm(f, "rm NAMESPACE", "Delete a namespace of --tenant with its streams (and their logs) and caches",
		func(ctx context.Context, c *controlplane.Client, name string) (string, error) {
			k := controlplane.NamespaceKey{TenantID: f.tenant, Namespace: name}
			return "namespace " + k.String(), c.DeleteNamespace(ctx, k)
		})
	cmd.AddCommand(add, ls, rm)
	return cmd
}

// streamFlags are the settings `stream add` and `stream edit` take.
type streamFlags struct {
	durable        bool
	fsync          string
	retentionAge   time.Duration
	retentionBytes int64
}

func (s *streamFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&s.durable, "durable", false, "keep the stream in a log on disk (else in memory)")
	fl.StringVar(&s.fsync, "fsync", "", "durable log's sync policy: always, interval or never (default interval)")
	fl.DurationVar(&s.retentionAge, "retention-age", 0, "drop whole segments older than this (whole seconds; 0 = no limit)")
	fl.Int64Var(&s.retentionBytes, "retention-bytes", 0, "keep at most this many bytes (whole segments; 0 = no limit)")
}

// registerEdit adds the flags of `stream edit`: the settings of
// register, each of which changes the stream only when given, so no help
// names a default that an edit would apply.
func (s *streamFlags) registerEdit(fl *pflag.FlagSet) {
	fl.BoolVar(&s.durable, "durable", false, "--durable: keep the stream in a log on disk, --durable=false: in memory"+unsetUnchanged)
	fl.StringVar(&s.fsync, "fsync", "", "durable log's sync policy: always, interval or never"+unsetUnchanged)
	fl.DurationVar(&s.retentionAge, "retention-age", 0, "drop whole segments older than this (whole seconds; 0 removes the limit)"+unsetUnchanged)
	fl.Int64Var(&s.retentionBytes, "retention-bytes", 0, "keep at most this many bytes (whole segments; 0 removes the limit)"+unsetUnchanged)
}

// unsetUnchanged ends the help of every `admin ... edit` flag: an edit
// sends only the settings given.
const unsetUnchanged = " (unset: unchanged)"

// retention returns r with the limits the flags that were given set (0
// clears a limit).
func (s *streamFlags) retention(fl *pflag.FlagSet, r controlplane.Retention) (controlplane.Retention, error) {
	if fl.Changed("retention-age") {
		switch {
		case s.retentionAge < 0:
			return r, errors.New("--retention-age must not be negative")
		case s.retentionAge%time.Second != 0:
			return r, fmt.Errorf("--retention-age %s: give whole seconds", s.retentionAge)
		case s.retentionAge == 0:
			r.MaxAgeSeconds = nil
		default:
			sec := int64(s.retentionAge / time.Second)
			r.MaxAgeSeconds = &sec
		}
	}
	if fl.Changed("retention-bytes") {
		switch {
		case s.retentionBytes < 0:
			return r, errors.New("--retention-bytes must not be negative")
		case s.retentionBytes == 0:
			r.MaxSizeBytes = nil
		default:
			n := s.retentionBytes
			r.MaxSizeBytes = &n
		}
	}
	return r, nil
}

// streamLine is a stream's settings in words.
func streamLine(s controlplane.Stream) []string {
	where := "memory"
	if s.Durable {
		where = "durable, fsync " + s.Fsync
	}
	ret := []string{}
	if a := s.Retention.MaxAgeSeconds; a != nil {
		ret = append(ret, "age "+(time.Duration(*a)*time.Second).String())
	}
	if b := s.Retention.MaxSizeBytes; b != nil {
		ret = append(ret, fmt.Sprintf("bytes %d", *b))
	}
	if len(ret) == 0 {
		ret = append(ret, "none")
	}
	return []string{s.Stream, where, strings.Join(ret, ", ")}
}

func newAdminStreamCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "stream", Short: "Add, list, show, change or delete the streams of --tenant / --namespace"}
	key := func(name string) controlplane.StreamKey {
		return controlplane.StreamKey{TenantID: f.tenant, Namespace: f.namespace, Stream: name}
	}
	var sf streamFlags
	add := &cobra.Command{Use: "add STREAM", Short: "Declare a stream (in memory unless --durable)", Args: cobra.ExactArgs(1)}
	add.RunE = f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
		ret, err := sf.retention(add.Flags(), controlplane.Retention{})
		if err != nil {
			return err
		}
		if err := f.ensureNamespace(ctx, c, w); err != nil {
			return err
		}
		s, err := c.CreateStream(ctx, controlplane.Stream{TenantID: f.tenant, Namespace: f.namespace, Stream: args[0], Durable: sf.durable, Fsync: sf.fsync, Retention: ret})
		if err != nil {
			return err
		}
		return f.print(w, s, func(w io.Writer) error {
			l := streamLine(s)
			_, err := fmt.Fprintf(w, "created stream %s (%s; retention %s)\n", s.Key(), l[1], l[2])
			return err
		})
	})
	sf.register(add.Flags())

	var ef streamFlags
	edit := &cobra.Command{
		Use:   "edit STREAM",
		Short: "Change a stream's durability, fsync or retention (only the flags given; 0 clears a retention limit)",
		Long: `Change a stream's durability, fsync policy or retention: only the settings
whose flags are given; the others stay as they are. 0 removes a retention
limit.

A broker applies a durability change, or a durable stream's fsync or
retention change, by recreating the stream, which it does only while the
stream holds no data; otherwise it logs that the stream must be deleted
and added again, or the broker restarted.`,
		Args: cobra.ExactArgs(1),
	}
	edit.RunE = f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
		k := key(args[0])
		fl := edit.Flags()
		var p controlplane.StreamPatch
		if fl.Changed("durable") {
			p.Durable = &ef.durable
		}
		if fl.Changed("fsync") {
			p.Fsync = &ef.fsync
		}
		if fl.Changed("retention-age") || fl.Changed("retention-bytes") {
			// The API replaces the whole retention object: start from the
			// stream's, so a limit not named here stays.
			cur, err := c.Stream(ctx, k)
			if err != nil {
				return err
			}
			ret, err := ef.retention(fl, cur.Retention)
			if err != nil {
				return err
			}
			p.Retention = &ret
		}
		if p == (controlplane.StreamPatch{}) {
			return errors.New("nothing to change: give --durable, --fsync, --retention-age or --retention-bytes")
		}
		s, err := c.UpdateStream(ctx, k, p)
		if err != nil {
			return err
		}
		return f.print(w, s, func(w io.Writer) error {
			l := streamLine(s)
			_, err := fmt.Fprintf(w, "changed stream %s (%s; retention %s)\n", s.Key(), l[1], l[2])
			return err
		})
	})
	ef.registerEdit(edit.Flags())

	ls := adminLs(f, "List the streams the control plane declares in the namespace", "STREAM\tSTORAGE\tRETENTION",
		func(ctx context.Context, c *controlplane.Client, pageSize int) iter.Seq2[controlplane.Stream, error] {
			return c.AllStreams(ctx, f.nsKey(), pageSize)
		},
		streamLine)
	info := adminInfo(f, "info STREAM", "Print a stream's declaration as JSON",
		func(ctx context.Context, c *controlplane.Client, name string) (controlplane.Stream, error) {
			return c.Stream(ctx, key(name))
		})
	rm := adminRm(f, "rm STREAM", "Delete a stream; a broker that follows deletes its log and its queue groups",
		func(ctx context.Context, c *controlplane.Client, name string) (string, error) {
			return "stream " + key(name).String(), c.DeleteStream(ctx, key(name))
		})
	cmd.AddCommand(add, ls, info, edit, rm)
	return cmd
}

// cacheFlags are the settings `cache add` and `cache edit` take.
type cacheFlags struct {
	display  string
	capacity int64
	durable  bool
}

func (cf *cacheFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&cf.display, "display-name", "", "display name")
	fl.Int64Var(&cf.capacity, "capacity-bytes", 0, "bound on the cache's accounted size; least recently used entries are evicted past it (0 = unbounded)")
	fl.BoolVar(&cf.durable, "durable", false, "keep the entries in a log on disk, reloaded at a restart (else in memory)")
}

// registerEdit adds the flags of `cache edit` (see
// streamFlags.registerEdit).
func (cf *cacheFlags) registerEdit(fl *pflag.FlagSet) {
	fl.StringVar(&cf.display, "display-name", "", "display name (\"\" clears it)"+unsetUnchanged)
	fl.Int64Var(&cf.capacity, "capacity-bytes", 0, "bound on the cache's accounted size; least recently used entries are evicted past it (0 makes it unbounded)"+unsetUnchanged)
	fl.BoolVar(&cf.durable, "durable", false, "--durable: keep the entries in a log on disk, reloaded at a restart, --durable=false: in memory (a broker applies it only while the cache holds no entry)"+unsetUnchanged)
}

func cacheLine(cc controlplane.Cache) []string {
	where, capacity := "memory", "unbounded"
	if cc.Durable {
		where = "durable"
	}
	if cc.CapacityBytes > 0 {
		capacity = fmt.Sprint(cc.CapacityBytes)
	}
	return []string{cc.Cache, where, capacity, cc.DisplayName}
}

func newAdminCacheCmd(f *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Add, list, show, change or delete the caches of --tenant / --namespace"}
	key := func(name string) controlplane.CacheKey {
		return controlplane.CacheKey{TenantID: f.tenant, Namespace: f.namespace, Cache: name}
	}
	var af cacheFlags
	add := &cobra.Command{Use: "add CACHE", Short: "Declare a cache", Args: cobra.ExactArgs(1)}
	add.RunE = f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
		if af.capacity < 0 {
			return errors.New("--capacity-bytes must not be negative")
		}
		if err := f.ensureNamespace(ctx, c, w); err != nil {
			return err
		}
		cc, err := c.CreateCache(ctx, controlplane.Cache{TenantID: f.tenant, Namespace: f.namespace, Cache: args[0], DisplayName: af.display, CapacityBytes: af.capacity, Durable: af.durable})
		if err != nil {
			return err
		}
		return f.print(w, cc, func(w io.Writer) error {
			l := cacheLine(cc)
			_, err := fmt.Fprintf(w, "created cache %s (%s, capacity %s)\n", cc.Key(), l[1], l[2])
			return err
		})
	})
	af.register(add.Flags())

	var ef cacheFlags
	edit := &cobra.Command{Use: "edit CACHE", Short: "Change a cache's display name, capacity or durability (only the flags given)", Args: cobra.ExactArgs(1)}
	edit.RunE = f.run(func(ctx context.Context, c *controlplane.Client, w io.Writer, args []string) error {
		fl := edit.Flags()
		var p controlplane.CachePatch
		if fl.Changed("display-name") {
			p.DisplayName = &ef.display
		}
		if fl.Changed("capacity-bytes") {
			if ef.capacity < 0 {
				return errors.New("--capacity-bytes must not be negative")
			}
			p.CapacityBytes = &ef.capacity
		}
		if fl.Changed("durable") {
			p.Durable = &ef.durable
		}
		if p == (controlplane.CachePatch{}) {
			return errors.New("nothing to change: give --display-name, --capacity-bytes or --durable")
		}
		cc, err := c.UpdateCache(ctx, key(args[0]), p)
		if err != nil {
			return err
		}
		return f.print(w, cc, func(w io.Writer) error {
			l := cacheLine(cc)
			_, err := fmt.Fprintf(w, "changed cache %s (%s, capacity %s)\n", cc.Key(), l[1], l[2])
			return err
		})
	})
	ef.registerEdit(edit.Flags())

	ls := adminLs(f, "List the caches the control plane declares in the namespace", "CACHE\tSTORAGE\tCAPACITY BYTES\tDISPLAY NAME",
		func(ctx context.Context, c *controlplane.Client, pageSize int) iter.Seq2[controlplane.Cache, error] {
			return c.AllCaches(ctx, f.nsKey(), pageSize)
		},
		cacheLine)
	info := adminInfo(f, "info CACHE", "Print a cache's declaration as JSON",
		func(ctx context.Context, c *controlplane.Client, name string) (controlplane.Cache, error) {
			return c.Cache(ctx, key(name))
		})
	rm := adminRm(f, "rm CACHE", "Delete a cache and its entries",
		func(ctx context.Context, c *controlplane.Client, name string) (string, error) {
			return "cache " + key(name).String(), c.DeleteCache(ctx, key(name))
		})
	cmd.AddCommand(add, ls, info, edit, rm)
	return cmd
}
