package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// One shell profile holds the variables of the broker and of the client
// commands (operations.md), so serve's --cache (a declaration,
// tenant/namespace/name[:max-bytes]) reads FELIX_DECLARE_CACHE, and
// FELIX_CACHE stays the client commands' cache name. Before, both read
// FELIX_CACHE: FELIX_CACHE=demo stopped the broker (`FELIX_CACHE: "demo":
// want tenant/namespace/name[:max-bytes]`), and FELIX_CACHE=default/default/demo
// broke `felix cache get`.
func TestServeCacheDeclarationHasItsOwnVariable(t *testing.T) {
	t.Setenv("FELIX_CACHE", "kv")
	t.Setenv("FELIX_DECLARE_CACHE", "default/default/kv:1048576")
	out, err := runCLI(t, "serve", "--print-config")
	if err != nil {
		t.Fatalf("serve --print-config with FELIX_CACHE=kv (the client's cache name): %v\n%s", err, out)
	}
	if !strings.Contains(out, "cache: ['default/default/kv:1048576'] # FELIX_DECLARE_CACHE") {
		t.Fatalf("serve --print-config with FELIX_DECLARE_CACHE: --cache not read from it:\n%s", out)
	}
	help, _ := runCLI(t, "serve", "--help")
	if !strings.Contains(help, "(env FELIX_DECLARE_CACHE)") {
		t.Errorf("serve --help does not name FELIX_DECLARE_CACHE for --cache:\n%s", help)
	}
	if got := unknownEnv(newRootCmd(), []string{"FELIX_DECLARE_CACHE=x", "FELIX_CACHE=y"}); len(got) != 0 {
		t.Errorf("unknownEnv = %v, want both variables known", got)
	}

	// The broker declares the cache from the profile, the client names it.
	addr, _, ca := startServe(t)
	t.Setenv("FELIX_ADDR", addr)
	t.Setenv("FELIX_CA_FILE", ca)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, stderr, err := runCLISplit(ctx, "cache", "put", "k", "v"); err != nil || !strings.HasPrefix(out, "OK version") {
		t.Fatalf("cache put with FELIX_CACHE=kv: %q %v %s", out, err, stderr)
	}
	if out, stderr, err := runCLISplit(ctx, "cache", "get", "k"); err != nil || out != "v\n" {
		t.Fatalf("cache get with FELIX_CACHE=kv: %q %v %s", out, err, stderr)
	}
}

// A value of FELIX_DECLARE_CACHE that is refused is named as that
// variable.
func TestServeDeclareCacheVariableNamedInErrors(t *testing.T) {
	t.Setenv("FELIX_DECLARE_CACHE", "demo")
	_, err := runCLI(t, "serve", "--print-config")
	if err == nil || !strings.Contains(err.Error(), "FELIX_DECLARE_CACHE") {
		t.Fatalf("serve with FELIX_DECLARE_CACHE=demo: %v, want the declaration refused naming FELIX_DECLARE_CACHE", err)
	}
}

// No flag of serve shares its variable with a flag of another command
// that means something else: a profile holding both would set one with
// the other's value. The shared ones name the same thing (the broker's
// data dir, its control plane, its metrics address, its segment size and
// sync policy for the in-process benchmarks). felix controlplane is
// another server, not a client of serve.
func TestServeVariablesNotSharedWithOtherMeanings(t *testing.T) {
	same := map[string]bool{
		"data-dir": true, "controlplane-addr": true, "controlplane-url": true, "controlplane-token": true,
		"controlplane-ca-file": true, "metrics-addr": true, "metrics-tls": true, "segment-bytes": true, "fsync": true,
	}
	root := newRootCmd()
	serve := map[string]string{} // variable → flag
	serveCmd, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serveCmd.Flags().VisitAll(func(f *pflag.Flag) {
		if readsEnv(f) {
			serve[flagEnv(f)] = f.Name
		}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c == serveCmd || c.Name() == "controlplane" && c.Parent() == root {
			return
		}
		visit := func(f *pflag.Flag) {
			if name, ok := serve[flagEnv(f)]; ok && readsEnv(f) && !same[name] {
				t.Errorf("%s --%s reads %s, as serve's --%s does", c.CommandPath(), f.Name, flagEnv(f), name)
			}
		}
		c.LocalFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// A benchmark whose --addr comes from FELIX_ADDR (the client commands'
// variable, in the same profile) benchmarks the broker there, not one it
// starts: it says so on stderr, once. Given on the command line, --addr
// is meant, and nothing is said.
func TestBenchSaysAddrCameFromEnv(t *testing.T) {
	t.Setenv("FELIX_ADDR", "127.0.0.1:1")
	checked := 0
	for _, sub := range newRootCmd().Commands() {
		if sub.Name() != "bench" {
			continue
		}
		for _, b := range sub.Commands() {
			if b.Flags().Lookup("addr") == nil {
				continue
			}
			checked++
			name := b.Name()
			// --ca-file of a missing file: the run fails at the dial, before
			// any traffic.
			_, stderr, err := runCLISplit(context.Background(), "bench", name, "--quiet", "--ca-file", "/nonexistent/ca.pem")
			if err == nil {
				t.Errorf("bench %s: ran with an unreadable --ca-file", name)
			}
			want := "bench: --addr 127.0.0.1:1 from FELIX_ADDR: benchmarking the broker there (--broker external)"
			if strings.Count(stderr, want) != 1 {
				t.Errorf("bench %s with FELIX_ADDR: stderr %q, want %q once", name, stderr, want)
			}
			_, stderr, _ = runCLISplit(context.Background(), "bench", name, "--quiet", "--addr", "127.0.0.1:1", "--ca-file", "/nonexistent/ca.pem")
			if strings.Contains(stderr, "FELIX_ADDR") {
				t.Errorf("bench %s --addr: stderr %q names FELIX_ADDR", name, stderr)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d benchmarks have --addr", checked)
	}
}
