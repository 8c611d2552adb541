package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/client"
)

// clientFlags are the connection flags every client subcommand shares.
type clientFlags struct {
	addr, tenant, token, namespace string
	tokenFile                      string
	caFile, serverName             string
	insecure                       bool
}

// devCertPath is where `felix serve` keeps its development certificate.
var devCertPath = filepath.Join("felix-data", "dev-cert.pem")

func (f *clientFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:5000", "broker address host:port")
	fl.StringVar(&f.tenant, "tenant", "default", "tenant to authenticate as")
	fl.StringVar(&f.token, "token", "dev", "auth token")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the auth token, read again for every new stream (so a refresher can replace an expiring token); overrides --token")
	fl.StringVarP(&f.namespace, "namespace", "n", "default", "namespace")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of the CA (or certificate) to trust (default: "+devCertPath+" when it exists and the broker is local)")
	fl.StringVar(&f.serverName, "server-name", "localhost", "name to verify in the broker's certificate")
	fl.BoolVar(&f.insecure, "insecure", false, "skip certificate verification (development only)")
}

// caFor is the CA file to trust for addr: caFile when given, else the
// local development certificate when the broker is on this machine.
func caFor(caFile, addr string, insecure bool) string {
	if caFile == "" && !insecure && isLoopback(addr) {
		if _, err := os.Stat(devCertPath); err == nil {
			return devCertPath
		}
	}
	return caFile
}

// dial connects with the flags. A --token-file that cannot be read fails
// first, naming the file; a failed connection says which address it was
// and, where the cause is a usual one, what to do.
func (f *clientFlags) dial(ctx context.Context) (*client.Client, error) {
	return f.dialWith(ctx, f.options())
}

// dialReporting is dial for a command that runs until interrupted (sub,
// queue consume, reply): the client's connections redial by themselves
// when lost, and each loss and reconnection is a line on stderr, w
// (through which the command writes its own stderr lines too, as the
// client's callbacks write from a goroutine of their own):
//
//	felix: connection lost (event): <error>; reconnecting
//	felix: reconnected (event)
//
// stdout is left alone; with --quiet, w is infoWriter's discarding one.
func (f *clientFlags) dialReporting(ctx context.Context, w *lockedWriter) (*client.Client, error) {
	o := f.options()
	o.OnDisconnect = func(e client.ConnEvent) {
		fmt.Fprintf(w, "felix: connection lost (%s): %v; reconnecting\n", e.Kind, e.Err)
	}
	o.OnReconnect = func(e client.ConnEvent) {
		fmt.Fprintf(w, "felix: reconnected (%s)\n", e.Kind)
	}
	return f.dialWith(ctx, o)
}

// addQuietFlag registers --quiet (-q) on fl, for a command that runs
// until interrupted (sub, reply, queue consume): it silences the
// informational lines that command writes on stderr (a lost connection,
// a reconnection, a consumer rejoining its group), written to the
// writer infoWriter returns. Errors, and the warnings that report lost
// data (felix sub's "missed N events"), are still printed. Default off.
// lines names the command's own lines, and kept what it prints anyway
// besides its errors ("" if nothing).
func addQuietFlag(fl *pflag.FlagSet, quiet *bool, lines, kept string) {
	still := "errors are still printed"
	if kept != "" {
		still = "errors, and " + kept + ", are still printed"
	}
	fl.BoolVarP(quiet, "quiet", "q", false, "do not print the connection-state lines on stderr ("+lines+"); "+still)
}

// infoWriter is where a command writes its informational stderr lines
// (through dialReporting and rejoin): stderr, or nowhere when quiet.
func infoWriter(stderr *lockedWriter, quiet bool) *lockedWriter {
	if quiet {
		return &lockedWriter{w: io.Discard}
	}
	return stderr
}

// dialWith is dial with the options o (built by f.options).
func (f *clientFlags) dialWith(ctx context.Context, o client.Options) (*client.Client, error) {
	if f.tokenFile != "" {
		if _, err := readTokenFile(f.tokenFile); err != nil {
			return nil, err
		}
	}
	c, err := client.Dial(ctx, f.addr, o)
	if err != nil {
		return nil, f.dialError(ctx, err)
	}
	return c, nil
}

// lockedWriter serializes writes to w, for a command's stderr that the
// client's connection callbacks write to as well.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// dialError explains a failed client.Dial to a person at a terminal.
func (f *clientFlags) dialError(ctx context.Context, err error) error {
	addr := f.addr
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	var se *client.ServerError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted while connecting to %s", addr)
	case errors.As(err, &idle) || errors.As(err, &hs):
		return &hintError{err, fmt.Sprintf("no broker answered at %s (is `felix serve` running there?)", addr)}
	case strings.Contains(err.Error(), "certificate signed by unknown authority"):
		return &hintError{err, fmt.Sprintf("the certificate of the broker at %s is not trusted: pass --ca-file (a local `felix serve` keeps it in DATA-DIR/dev-cert.pem)", addr)}
	case errors.As(err, &se) && se.Message == "auth failed":
		tok := f.token
		if f.tokenFile != "" {
			tok, _ = readTokenFile(f.tokenFile)
		}
		if c, ok := auth.PeekClaims(tok); ok && c.Tenant != "" && c.Tenant != f.tenant {
			return fmt.Errorf("%w: the token is for tenant %q, not --tenant %q", err, c.Tenant, f.tenant)
		}
	}
	return err
}

// hintError is an error with a line of advice in front of it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string {
	return e.hint + ": " + strings.TrimPrefix(e.err.Error(), "felix: ")
}

func (e *hintError) Unwrap() error { return e.err }

func (f *clientFlags) options() client.Options {
	o := client.Options{
		TenantID: f.tenant, Token: f.token, CAFile: caFor(f.caFile, f.addr, f.insecure), Insecure: f.insecure, ServerName: f.serverName,
		PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1,
	}
	if path := f.tokenFile; path != "" {
		o.TokenSource = func(context.Context) (string, error) { return readTokenFile(path) }
	}
	return o
}

// readTokenFile returns the token in path, without surrounding white space.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientCmd builds a client subcommand group with the shared flags, whose
// values may also come from FELIX_* variables. Only the flags registered
// on cmd so far (the connection flags, --group, --cache) read a variable,
// as their help says; a subcommand's own flags (--count, --from, --ttl,
// ...) do not, so a stray FELIX_COUNT or FELIX_TTL changes nothing.
func clientCmd(cmd *cobra.Command, f *clientFlags) *cobra.Command {
	f.register(cmd)
	annotateEnv(cmd.PersistentFlags())
	envFlags := map[string]bool{}
	cmd.PersistentFlags().VisitAll(func(fl *pflag.Flag) { envFlags[fl.Name] = fl.Name != "help" })
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		warnUnknownEnv(c)
		return applyEnvTo(c.Flags(), envFlags)
	}
	return cmd
}
