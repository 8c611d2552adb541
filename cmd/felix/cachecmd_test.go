package main

import (
	"errors"
	"strings"
	"testing"
)

func TestCacheCLI(t *testing.T) {
	addr, _, ca := startServe(t, "--cache", "default/default/sessions:1048576")
	conn := []string{"--addr", addr, "--ca-file", ca}
	run := func(args ...string) (string, error) { return runCLI(t, append(args, conn...)...) }
	if out, err := run("cache", "put", "k", "hello", "--ttl", "1h"); err != nil || !strings.HasPrefix(out, "OK version ") {
		t.Fatalf("put: %q %v", out, err)
	}
	if out, err := run("cache", "get", "k"); err != nil || out != "hello\n" {
		t.Fatalf("get: %q %v", out, err)
	}
	if out, err := run("cache", "ttl", "k"); err != nil || !strings.HasPrefix(out, "59m") {
		t.Fatalf("ttl: %q %v", out, err)
	}
	if _, err := run("cache", "put", "k", "v", "--ttl", "-5s"); err == nil || !strings.Contains(err.Error(), "invalid --ttl") {
		t.Fatalf("put --ttl -5s: %v, want it refused", err)
	}
	// A sub-millisecond TTL is one millisecond, not "expire at once".
	if _, err := run("cache", "put", "short", "v", "--ttl", "500us"); err != nil {
		t.Fatalf("put --ttl 500us: %v", err)
	}
	if _, err := run("cache", "put", "k", "again", "--if-absent"); err == nil || !strings.Contains(err.Error(), "condition failed") {
		t.Fatalf("put --if-absent on an existing key: %v", err)
	}
	if out, err := run("cache", "del", "k"); err != nil || out != "1\n" {
		t.Fatalf("del: %q %v", out, err)
	}
	if out, err := run("cache", "get", "k"); !errors.Is(err, errMissing) || out != "(nil)\n" {
		t.Fatalf("get after del: %q %v", out, err)
	}
	// A declared cache other than the default.
	if _, err := run("cache", "-c", "sessions", "put", "s", "1"); err != nil {
		t.Fatalf("put into --cache sessions: %v", err)
	}
	if _, err := run("cache", "-c", "nope", "get", "s"); err == nil || !strings.Contains(err.Error(), "cache scope not found: default/default/nope") {
		t.Fatalf("unknown cache: %v", err)
	}
}
