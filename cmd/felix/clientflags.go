package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

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

func (f *clientFlags) dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, f.addr, f.options())
}

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
// values may also come from FELIX_* variables.
func clientCmd(cmd *cobra.Command, f *clientFlags) *cobra.Command {
	f.register(cmd)
	annotateEnv(cmd.PersistentFlags())
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if err := applyEnv(c.Flags()); err != nil {
			return err
		}
		return applyEnv(c.InheritedFlags())
	}
	return cmd
}
