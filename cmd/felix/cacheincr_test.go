package main

import (
	"strings"
	"testing"
)

// felix cache incr / decr print the new value, Redis-like; a missing key
// counts as 0, --ttl applies to a key the command creates, a non-integer
// value and an overflow are refused with the broker's reason.
func TestCacheIncrCLI(t *testing.T) {
	addr, _, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	// The connection flags go before a "--", after which all is arguments.
	run := func(args ...string) (string, error) {
		i := len(args)
		for j, a := range args {
			if a == "--" {
				i = j
				break
			}
		}
		full := append(append(append([]string{}, args[:i]...), conn...), args[i:]...)
		return runCLI(t, full...)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"cache", "incr", "hits"}, "1\n"},
		{[]string{"cache", "incr", "hits", "41", "--ttl", "1h"}, "42\n"},
		{[]string{"cache", "get", "hits"}, "42\n"},
		{[]string{"cache", "decr", "hits"}, "41\n"},
		{[]string{"cache", "decr", "hits", "50"}, "-9\n"},
		{[]string{"cache", "incr", "hits", "--", "-1"}, "-10\n"},
		{[]string{"cache", "ttl", "hits"}, "-1\n"}, // created without --ttl: kept without
		{[]string{"cache", "incr", "visits", "--ttl", "1h"}, "1\n"},
		{[]string{"cache", "put", "n", "10"}, ""},
		{[]string{"cache", "incr", "n", "5"}, "15\n"},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		if err != nil || (s.want != "" && out != s.want) {
			t.Fatalf("%v: %q %v, want %q", s.args, out, err, s.want)
		}
	}
	if out, err := run("cache", "ttl", "visits"); err != nil || !strings.HasPrefix(out, "59m") {
		t.Fatalf("ttl of a key incr created with --ttl 1h: %q %v", out, err)
	}
	refused := []struct {
		args []string
		want string
	}{
		{[]string{"cache", "put", "name", "felix"}, ""},
		{[]string{"cache", "incr", "name"}, "not an integer"},
		{[]string{"cache", "incr", "big", "9223372036854775807"}, ""},
		{[]string{"cache", "incr", "big"}, "overflow"},
		{[]string{"cache", "incr", "k", "1.5"}, "invalid DELTA"},
		{[]string{"cache", "decr", "k", "--", "-9223372036854775808"}, "invalid DELTA"},
		{[]string{"cache", "incr", "k", "--ttl", "-1s"}, "invalid --ttl"},
	}
	for _, r := range refused {
		_, err := run(r.args...)
		if r.want == "" {
			if err != nil {
				t.Fatalf("%v: %v", r.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Fatalf("%v: %v, want an error containing %q", r.args, err, r.want)
		}
	}
	if out, err := run("cache", "get", "name"); err != nil || out != "felix\n" {
		t.Fatalf("value after the refused incr: %q %v", out, err)
	}
}
