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

// --cache-max-total-bytes bounds all caches together: a put into one
// cache evicts from the one holding most, and a value larger than the
// bound is refused.
func TestCacheMaxTotalBytes(t *testing.T) {
	addr, _, ca := startServe(t, "--cache", "default/default/a,default/default/b", "--cache-max-total-bytes", "4096")
	conn := []string{"--addr", addr, "--ca-file", ca}
	run := func(args ...string) (string, error) { return runCLI(t, append(args, conn...)...) }
	v := strings.Repeat("x", 1000)
	for _, k := range []string{"k1", "k2", "k3"} {
		if _, err := run("cache", "-c", "a", "put", k, v); err != nil {
			t.Fatalf("put a/%s: %v", k, err)
		}
	}
	for _, k := range []string{"k1", "k2"} {
		if _, err := run("cache", "-c", "b", "put", k, v); err != nil {
			t.Fatalf("put b/%s: %v", k, err)
		}
	}
	kept := 0
	for _, k := range []string{"k1", "k2", "k3"} {
		if _, err := run("cache", "-c", "a", "get", k); err == nil {
			kept++
		} else if !errors.Is(err, errMissing) {
			t.Fatalf("get a/%s: %v", k, err)
		}
	}
	for _, k := range []string{"k1", "k2"} {
		if out, err := run("cache", "-c", "b", "get", k); err != nil || out != v+"\n" {
			t.Fatalf("get b/%s: %v", k, err)
		}
	}
	if kept != 1 {
		t.Fatalf("a kept %d of its 3 entries, want 1 (3 of about 1,100 bytes fit in 4,096)", kept)
	}
	if _, err := run("cache", "-c", "b", "put", "huge", strings.Repeat("y", 5000)); err == nil || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("put over the bound: %v, want it refused naming 4096", err)
	}
}
