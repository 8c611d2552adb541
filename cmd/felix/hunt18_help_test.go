package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/internal/syncbuf"
)

// An `admin ... edit` flag left unset leaves that setting as it is, so
// its help names no default (`stream edit --fsync` said "(default
// interval)", as if an edit without it set interval) and says that unset
// means unchanged.
func TestAdminEditHelpSaysUnsetIsUnchanged(t *testing.T) {
	for _, obj := range []string{"stream", "cache"} {
		edit, _, err := newRootCmd().Find([]string{"admin", obj, "edit"})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		edit.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			n++
			l := helpLine(t, "--"+f.Name, "admin", obj, "edit")
			if !strings.Contains(l, "(unset: unchanged)") || strings.Contains(l, "default") {
				t.Errorf("felix admin %s edit --help: %q; want no default and \"(unset: unchanged)\"", obj, strings.TrimSpace(l))
			}
		})
		if n == 0 {
			t.Fatalf("felix admin %s edit has no flags", obj)
		}
	}
	// add keeps its defaults: what an add without the flag gets.
	if l := helpLine(t, "--fsync", "admin", "stream", "add"); !strings.Contains(l, "(default interval)") {
		t.Errorf("felix admin stream add --help: %q; want its default", l)
	}
}

// --replay-ring 0 is not "no ring" but the default 1024 (the broker's
// zero value): the help and operations.md say so, and a broker started
// with it keeps the last 1024 events for a start at earliest.
func TestReplayRingZeroIsTheDefault(t *testing.T) {
	if l := helpLine(t, "--replay-ring", "serve"); !strings.Contains(l, "0 = the default 1024") {
		t.Errorf("felix serve --help: %q; want what 0 means", strings.TrimSpace(l))
	}
	row := ""
	for l := range strings.SplitSeq(readOperationsDoc(t), "\n") {
		if strings.HasPrefix(l, "| `--replay-ring` |") {
			row = l
		}
	}
	if !strings.Contains(row, "`0` is the default 1024") {
		t.Errorf("operations.md's --replay-ring row %q does not say what 0 means", row)
	}
	// An empty --queue-dead-letter-suffix is the default .dlq, not "no
	// dead-letter stream".
	if l := helpLine(t, "--queue-dead-letter-suffix", "serve"); !strings.Contains(l, `"" = the default .dlq`) {
		t.Errorf("felix serve --help: %q; want what \"\" means", strings.TrimSpace(l))
	}

	addr, _, ca := startServe(t, "--replay-ring", "0")
	conn := []string{"--addr", addr, "--ca-file", ca}
	msgs := make([]string, 1030)
	for i := range msgs {
		msgs[i] = fmt.Sprint(i)
	}
	if out, err := runCLI(t, append(append([]string{"pub", "demo"}, msgs...), conn...)...); err != nil {
		t.Fatalf("pub: %v\n%s", err, out)
	}
	out, err := runCLI(t, append([]string{"sub", "demo", "--from", "earliest", "--count-only", "--idle-exit", "1s", "-q"}, conn...)...)
	if err != nil || strings.TrimSpace(out) != "1024" {
		t.Fatalf("sub --from earliest after 1030 events with --replay-ring 0: %q, %v; want 1024", out, err)
	}
}

// completions runs `felix __complete args...` (what the scripts of `felix
// completion` ask) and returns the words offered.
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := runCLI(t, append([]string{"__complete"}, args...)...)
	if err != nil {
		t.Fatalf("felix __complete %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var words []string
	for l := range strings.SplitSeq(out, "\n") {
		if l == "" || strings.HasPrefix(l, ":") || strings.HasPrefix(l, "Completion ended") {
			continue
		}
		w, _, _ := strings.Cut(l, "\t")
		words = append(words, w)
	}
	return words
}

// The commands that take negative numbers as arguments (cache put, incr,
// ..., pub, request) parse their own flags, and cobra's completion took
// all their flags for unset: it offered a flag already given again and
// never --help or -h. They complete as every other command does now,
// negative numbers among the arguments included.
func TestNegativeArgsCommandsCompleteTheirFlags(t *testing.T) {
	var cmds [][]string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Annotations[negativeArgsAnnotation] != "" {
			cmds = append(cmds, strings.Fields(c.CommandPath())[1:])
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	if len(cmds) < 11 {
		t.Fatalf("%d commands take negative arguments, want at least 11: %v", len(cmds), cmds)
	}
	for _, path := range cmds {
		name := strings.Join(path, " ")
		cmd, _, err := newRootCmd().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd.InheritedFlags()
		var want []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "tenant" {
				want = append(want, "--"+f.Name)
			}
		})
		want = append(want, "--help")
		got := completions(t, append(path, "x", "-2", "--tenant", "t", "--")...)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("felix __complete %s x -2 --tenant t --: %v lacks %s", name, got, w)
			}
		}
		if slices.Contains(got, "--tenant") {
			t.Errorf("felix __complete %s x -2 --tenant t --: %v offers --tenant, given already", name, got)
		}
		if got := completions(t, append(path, "-")...); !slices.Contains(got, "-h") {
			t.Errorf("felix __complete %s -: %v lacks -h", name, got)
		}
	}
	// A negative number after a flag that takes a value is that value:
	// --repeat is given, and the next word is completed as a flag.
	if got := completions(t, "pub", "s", "-3", "--repeat", "-2", "--r"); !slices.Equal(got, []string{"--raw"}) {
		t.Errorf("felix __complete pub s -3 --repeat -2 --r: %v, want [--raw]", got)
	}
	if got := completions(t, "cache", "incr", "hits", "-3", "--ttl", "1m", "--t"); slices.Contains(got, "--ttl") || !slices.Contains(got, "--tenant") {
		t.Errorf("felix __complete cache incr hits -3 --ttl 1m --t: %v", got)
	}
}

// envTestValue is a value other than the default for a flag of type typ,
// as text for its variable.
func envTestValue(typ string) string {
	switch typ {
	case "bool":
		return "true"
	case "int", "int64", "uint", "uint64", "intSlice":
		return "7"
	case "duration":
		return "7s"
	default:
		return "zz-env"
	}
}

// Every flag whose help says "(env FELIX_X)" takes its value from FELIX_X
// when the command line does not give it: `felix status --help` showed
// (env FELIX_METRICS_TLS) and (env FELIX_CA_FILE), which status never
// read. Each command is run with its own RunE replaced, so nothing but
// the flag parsing and the hooks runs.
func TestEveryDocumentedEnvVariableIsRead(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" && c.Name() != "completion" && c.Parent() != nil && c.Parent().Name() != "completion" {
			paths = append(paths, strings.Fields(c.CommandPath())[1:])
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	// find returns path's command in a new tree, its RunE recording the
	// flags' values.
	find := func(t *testing.T, path []string) (*cobra.Command, map[string]string) {
		cmd, _, err := newRootCmd().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd.InheritedFlags() // merged into cmd.Flags()
		got := map[string]string{}
		cmd.Run = nil
		cmd.RunE = func(c *cobra.Command, _ []string) error {
			c.Flags().VisitAll(func(f *pflag.Flag) { got[f.Name] = f.Value.String() })
			return nil
		}
		return cmd, got
	}
	checked := 0
	for _, path := range paths {
		cmd, _ := find(t, path)
		// As many arguments as the command takes.
		var args []string
		for n := 0; n < 4 && cmd.ValidateArgs(args) != nil; n++ {
			args = append(args, "x")
		}
		cmd, _ = find(t, path)
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			env := flagEnv(f)
			if !strings.Contains(f.Usage, "(env "+env+")") {
				return
			}
			checked++
			name := strings.Join(path, " ") + " --" + f.Name
			t.Run(name, func(t *testing.T) {
				val := envTestValue(f.Value.Type())
				t.Setenv(env, val)
				probe, got := find(t, path)
				if err := probe.Flags().Set(f.Name, val); err != nil {
					t.Fatal(err)
				}
				want := probe.Flags().Lookup(f.Name).Value.String()
				run, got := find(t, path)
				root := run.Root()
				root.SetArgs(append(append([]string{}, path...), args...))
				root.SetOut(io.Discard)
				root.SetErr(io.Discard)
				err := root.Execute()
				switch {
				case err != nil && strings.Contains(err.Error(), val):
					// read, and refused (--config: no such file)
				case err != nil:
					t.Fatalf("felix %s with %s=%s: %v", strings.Join(path, " "), env, val, err)
				case got[f.Name] != want:
					t.Errorf("felix %s with %s=%s: --%s is %q; its help says it reads %s", strings.Join(path, " "), env, val, f.Name, got[f.Name], env)
				}
			})
		})
	}
	if checked < 100 {
		t.Fatalf("only %d flags say they read a variable", checked)
	}
}

// felix status reads a broker served over HTTPS with FELIX_METRICS_TLS
// and FELIX_CA_FILE set, as the broker and the client commands share
// them (it tried plain HTTP and named --metrics-tls before).
func TestStatusReadsMetricsTLSFromEnv(t *testing.T) {
	logs := &syncbuf.Buffer{}
	_, _, ca, stop := startServeLogs(t, t.TempDir(), logs, "--log-level", "info", "--metrics-tls")
	defer stop()
	maddr := metricsAddrIn(t, logs)
	t.Setenv("FELIX_METRICS_TLS", "true")
	t.Setenv("FELIX_CA_FILE", ca)
	out, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0")
	if err != nil || !strings.Contains(out, "broker ready") {
		t.Fatalf("status with FELIX_METRICS_TLS and FELIX_CA_FILE: %v\n%s", err, out)
	}
}

// A --timeout of 0 (or less) is refused, saying so: it was a deadline
// passed already, and felix admin, request, status and demo failed at
// once with "context deadline exceeded", whatever the server, without
// sending a request.
func TestZeroTimeoutIsRefused(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"ready","uptime_seconds":3}`))
	}))
	defer hs.Close()
	addr, _, ca := startServe(t)
	for _, args := range [][]string{
		{"admin", "tenant", "add", "acme", "--controlplane-url", hs.URL, "--controlplane-token", "t"},
		{"admin", "tenant", "ls", "--controlplane-url", hs.URL, "--controlplane-token", "t"},
		{"request", "svc", "--addr", addr, "--ca-file", ca},
		{"status", "--metrics-addr", strings.TrimPrefix(hs.URL, "http://"), "--interval", "0"},
		{"demo", "simple"},
	} {
		for _, d := range []string{"0", "-1s"} {
			out, err := runCLI(t, append(args, "--timeout", d)...)
			if err == nil || !strings.Contains(err.Error(), "want a positive duration") {
				t.Errorf("felix %s --timeout %s: %v\n%s", strings.Join(args, " "), d, err, out)
			}
		}
	}
	// A positive one still works.
	if out, err := runCLI(t, "status", "--metrics-addr", strings.TrimPrefix(hs.URL, "http://"), "--interval", "0", "--timeout", "5s"); err != nil || !strings.Contains(out, "broker ready") {
		t.Fatalf("status --timeout 5s: %v\n%s", err, out)
	}
}

// A soak setting of 0 that bench.SoakConfig.WithDefaults turns into its
// default says so in its help ("--mem-rate 0" ran 1000 publishes a second
// rather than none), and one whose help does not say what 0 means does
// not turn 0 into its default.
func TestBenchSoakHelpSaysWhatZeroMeans(t *testing.T) {
	withDefaults := func(set func(fl *pflag.FlagSet)) (bench.SoakConfig, error) {
		var f benchSoakFlags
		fl := benchSoakCmd(&f).Flags()
		set(fl)
		return f.cfg.WithDefaults()
	}
	def, err := withDefaults(func(*pflag.FlagSet) {})
	if err != nil {
		t.Fatal(err)
	}
	var f benchSoakFlags
	n := 0
	benchSoakCmd(&f).Flags().VisitAll(func(fl *pflag.Flag) {
		if typ := fl.Value.Type(); typ != "int" && typ != "duration" {
			return
		}
		// Only the settings of bench.SoakConfig (not --cache-bytes or
		// --server-gomaxprocs).
		var g benchSoakFlags
		fs := benchSoakCmd(&g).Flags()
		before := g.cfg
		if fs.Set(fl.Name, envTestValue(fl.Value.Type())) != nil || g.cfg == before {
			return
		}
		n++
		got, err := withDefaults(func(fs *pflag.FlagSet) { fs.Set(fl.Name, "0") })
		says := strings.Contains(fl.Usage, "(0: the default")
		switch {
		case says && (err != nil || got != def):
			t.Errorf("bench soak --%s 0: %v, %+v; its help says 0 is the default, %+v", fl.Name, err, got, def)
		case !says && !strings.Contains(fl.Usage, "(0: ") && err == nil && got == def:
			t.Errorf("bench soak --%s 0 is its default, which its help %q does not say", fl.Name, fl.Usage)
		}
	})
	if n < 15 {
		t.Fatalf("only %d flags set the soak's config", n)
	}
}

// --quiet's help names the lines its own command writes: it spoke of
// "consumer rejoined" and felix sub's "missed N events" on reply too.
func TestQuietHelpNamesOnlyTheCommandsLines(t *testing.T) {
	for _, tc := range []struct {
		cmd       []string
		want, not []string
	}{
		{[]string{"sub"}, []string{"connection lost", `"missed N events"`}, []string{"rejoined"}},
		{[]string{"reply"}, []string{"connection lost"}, []string{"rejoined", "missed"}},
		{[]string{"queue", "consume"}, []string{"connection lost", "consumer rejoined"}, []string{"missed"}},
	} {
		l := helpLine(t, "-q,", tc.cmd...)
		for _, w := range tc.want {
			if !strings.Contains(l, w) {
				t.Errorf("felix %s --help: %q lacks %q", strings.Join(tc.cmd, " "), l, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(l, n) {
				t.Errorf("felix %s --help: %q speaks of %q", strings.Join(tc.cmd, " "), l, n)
			}
		}
	}
}
