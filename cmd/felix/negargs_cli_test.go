package main

import (
	"strings"
	"testing"
	"time"
)

// A negative number is an argument, as a Redis user writes it (SET t -1,
// INCRBY hits -3, EXPIRE k -1), not a shorthand flag that pflag does not
// know: felix cache put/incr/decr/expire/get, felix pub and felix request
// take it in its place, a flag after it is still a flag, and a negative
// number after a flag that takes a value is still that flag's value.
func TestNegativeNumbersAreArguments(t *testing.T) {
	addr, _, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	cli := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, conn...)...)
	}
	ok := func(want string, args ...string) {
		t.Helper()
		out, err := cli(args...)
		if err != nil || out != want {
			t.Fatalf("felix %s: %q, %v; want %q", strings.Join(args, " "), out, err, want)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, err := cli(args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("felix %s: %q, %v; want an error with %q", strings.Join(args, " "), out, err, want)
		}
	}

	// A negative value and delta, with a flag after the number.
	if out, err := cli("cache", "put", "t", "-1"); err != nil || !strings.HasPrefix(out, "OK version ") {
		t.Fatalf("cache put t -1: %q, %v", out, err)
	}
	ok("-1\n", "cache", "get", "t")
	ok("-4\n", "cache", "incr", "t", "-3")
	ok("6\n", "cache", "decr", "t", "-10")
	ok("-3\n", "cache", "incr", "n", "-3", "--ttl", "1m")
	if out, err := cli("cache", "ttl", "n"); err != nil || strings.HasPrefix(out, "-") {
		t.Fatalf("cache ttl n after incr n -3 --ttl 1m: %q, %v; want a duration", out, err)
	}
	// -- still works (the flags before it).
	if out, err := runCLI(t, append(append([]string{"cache", "incr"}, conn...), "t", "--", "-8")...); err != nil || out != "-2\n" {
		t.Fatalf("cache incr t -- -8: %q, %v", out, err)
	}
	// A negative key.
	if _, err := cli("cache", "put", "-5", "v"); err != nil {
		t.Fatal(err)
	}
	ok("v\n", "cache", "get", "-5")

	// EXPIRE k -1 deletes the key in Redis; ours refuses every TTL that
	// is not positive, saying what to use instead.
	fails(`invalid TTL "-1": want a positive duration`, "cache", "expire", "t", "-1")
	fails(`invalid TTL "-5m"`, "cache", "expire", "t", "-5m")
	ok("-2\n", "cache", "get", "t")

	// After a flag that takes a value, a negative number is its value.
	fails("invalid --ttl -5s", "cache", "put", "k", "v", "--ttl", "-5s")
	fails("default/default/-7", "cache", "get", "k", "-c", "-7")
	// An unknown flag is still one.
	fails("unknown flag: --bogus", "cache", "incr", "t", "-3", "--bogus")
	// Help is still help.
	if out, err := cli("cache", "incr", "-h"); err != nil || !strings.Contains(out, "felix cache incr hits -3") {
		t.Fatalf("cache incr -h: %q, %v", out, err)
	}

	// pub and request take negative data too.
	if out, err := cli("pub", "demo", "-3", "-40"); err != nil || !strings.Contains(out, "published 2 message(s)") {
		t.Fatalf("pub demo -3 -40: %q, %v", out, err)
	}
	ok("-3\n-40\n", "sub", "demo", "--from", "earliest", "--count", "2", "--idle-exit", "10s")
	done := make(chan error, 1)
	go func() {
		_, err := cli("reply", "neg", "--count", "1")
		done <- err
	}()
	var reply string
	eventually(t, "a reply to request neg -1", func() bool {
		out, err := cli("request", "neg", "-1", "--timeout", "2s")
		reply = out
		return err == nil
	})
	if reply != "-1\n" {
		t.Fatalf("request neg -1: reply %q, want the echo -1", reply)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reply --count 1 did not end")
	}
}
