package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
)

// felix cache expire / persist print 1 or 0 as Redis's EXPIRE and
// PERSIST; a TTL that is not positive is refused; felix cache keys prints
// every key (with a prefix, only its keys) in order, across pages.
func TestCacheExpireKeysCLI(t *testing.T) {
	addr, _, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	run := func(args ...string) (string, error) {
		return runCLI(t, append(args, conn...)...)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"cache", "put", "session", "x"}, ""},
		{[]string{"cache", "expire", "session", "1h"}, "1\n"},
		{[]string{"cache", "expire", "missing", "1h"}, "0\n"},
		{[]string{"cache", "get", "session"}, "x\n"},
		{[]string{"cache", "persist", "session"}, "1\n"},
		{[]string{"cache", "ttl", "session"}, "-1\n"},
		{[]string{"cache", "persist", "missing"}, "0\n"},
		{[]string{"cache", "ttl", "missing"}, "-2\n"},           // not created
		{[]string{"cache", "expire", "session", "7200"}, "1\n"}, // seconds, as Redis
	}
	for _, s := range steps {
		out, err := run(s.args...)
		if err != nil || (s.want != "" && out != s.want) {
			t.Fatalf("%v: %q %v, want %q", s.args, out, err, s.want)
		}
	}
	if out, err := run("cache", "ttl", "session"); err != nil || !strings.HasPrefix(out, "1h59m") {
		t.Fatalf("ttl after expire 7200: %q %v", out, err)
	}
	for _, ttl := range []string{"0", "-1", "-5s", "0s", "soon"} {
		// A negative TTL after "--", as flags go before it.
		args := append(append([]string{"cache", "expire"}, conn...), "--", "session", ttl)
		if _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), "invalid TTL") {
			t.Fatalf("expire with TTL %s: %v, want refused", ttl, err)
		}
	}
	if out, err := run("cache", "get", "session"); err != nil || out != "x\n" {
		t.Fatalf("session after the refused expires: %q %v", out, err)
	}

	// Over a page of 1000, written through one SDK client (a CLI run per
	// key would dial 1203 times).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kv := c.Cache("default", "demo")
	var want []string
	for i := range 1203 {
		want = append(want, fmt.Sprintf("user:%04d", i))
		if _, err := kv.Put(ctx, want[i], []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run("cache", "keys", "user:")
	if err != nil || out != strings.Join(want, "\n")+"\n" {
		t.Fatalf("keys user: printed %d lines, %v; want the %d keys in order", strings.Count(out, "\n"), err, len(want))
	}
	out, err = run("cache", "keys")
	if err != nil || !strings.HasPrefix(out, "session\nuser:0000\n") || !strings.HasSuffix(out, "user:1202\n") {
		t.Fatalf("keys: %.60q… %v", out, err)
	}
	if out, err := run("cache", "keys", "nothing"); err != nil || out != "" {
		t.Fatalf("keys of an unused prefix: %q %v", out, err)
	}
	// Keys that would break the one-a-line output, or read as quoted, are
	// printed quoted; printable ones (spaces and non-ASCII too) as they are.
	for _, k := range []string{"odd:a\nb", "odd:\x1b[31m", "odd:tab\there", `"odd:quoted"`, "odd:ünï code"} {
		if _, err := run("cache", "put", k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	out, err = run("cache", "keys", "odd:")
	if want := "\"odd:\\x1b[31m\"\n\"odd:a\\nb\"\n\"odd:tab\\there\"\nodd:ünï code\n"; err != nil || out != want {
		t.Fatalf("keys odd: printed %q %v, want %q", out, err, want)
	}
	if out, err := run("cache", "keys", `"`); err != nil || out != "\"\\\"odd:quoted\\\"\"\n" {
		t.Fatalf("keys of a quoted key: %q %v", out, err)
	}
}
