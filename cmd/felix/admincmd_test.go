package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/felixmq/felix/controlplane"
)

// adminBroker is a broker with its embedded control plane for `felix
// admin` tests: run calls felix admin with args against it (the
// credential from the data dir's admin-token file), must does and fails
// the test on an error.
type adminBroker struct {
	addr, ca string
	dir      string // the broker's data dir
	cp       cpInfo // its control plane
	run      func(args ...string) (string, error)
	must     func(args ...string) string
}

func startAdminBroker(t *testing.T) adminBroker {
	t.Helper()
	return startAdminBrokerDir(t, t.TempDir())
}

// startAdminBrokerDir is startAdminBroker on the data dir dir.
func startAdminBrokerDir(t *testing.T, dir string) adminBroker {
	t.Helper()
	nextCP := watchControlPlanes(t)
	addr, _, ca, stop := startServeDir(t, dir, "--no-dev-defaults",
		"--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms")
	t.Cleanup(stop)
	cp := nextCP()
	run := func(args ...string) (string, error) {
		return runCLI(t, append(append([]string{"admin"}, args...), "--controlplane-url", cp.base, "--data-dir", dir)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("felix admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	return adminBroker{addr: addr, ca: ca, dir: dir, cp: cp, run: run, must: must}
}

// `felix admin` against a real broker's embedded control plane: what it
// declares is served on QUIC, edits keep what they do not name, refusals
// are clear, and deletes take effect.
func TestAdminDeclaresWhatTheBrokerServes(t *testing.T) {
	ab := startAdminBroker(t)
	addr, ca, admin, must := ab.addr, ab.ca, ab.run, ab.must
	in := []string{"--tenant", "acme", "-n", "shop"}

	// Before anything is declared, a list is empty, not an error.
	if out := must("stream", "ls"); !strings.HasPrefix(out, "none: control plane: 404 not_found: namespace default/default not found") {
		t.Fatalf("stream ls on a fresh broker printed %q", out)
	}
	if out := must("cache", "ls", "--json", "--tenant", "ghost"); out != "[]\n" {
		t.Fatalf("cache ls --json of a missing tenant printed %q", out)
	}

	if out := must("tenant", "add", "acme", "--display-name", "Acme Inc"); out != "created tenant acme\n" {
		t.Fatalf("tenant add printed %q", out)
	}
	must("namespace", "add", "shop", "--tenant", "acme")
	out := must(append([]string{"stream", "add", "orders", "--durable", "--retention-age", "2h"}, in...)...)
	if !strings.Contains(out, "created stream acme/shop/orders (durable, fsync interval; retention age 2h0m0s)") {
		t.Fatalf("stream add printed %q", out)
	}
	if _, err := admin(append([]string{"stream", "add", "orders"}, in...)...); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second stream add: %v; want already exists", err)
	}
	if _, err := admin(append([]string{"stream", "add", "late", "--retention-age", "1500ms"}, in...)...); err == nil || !strings.Contains(err.Error(), "whole seconds") {
		t.Fatalf("retention of 1.5s: %v; want a whole-seconds refusal", err)
	}

	// The broker serves the declared stream.
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "shop"}
	eventually(t, "a publish to the declared stream", func() bool {
		_, err := runCLI(t, append([]string{"pub", "orders", "o-1"}, conn...)...)
		return err == nil
	})

	// An edit of one retention limit keeps the other.
	must(append([]string{"stream", "edit", "orders", "--retention-bytes", "1000000"}, in...)...)
	var s controlplane.Stream
	if err := json.Unmarshal([]byte(must(append([]string{"stream", "info", "orders"}, in...)...)), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Durable || s.Retention.MaxAgeSeconds == nil || *s.Retention.MaxAgeSeconds != 7200 || s.Retention.MaxSizeBytes == nil || *s.Retention.MaxSizeBytes != 1000000 {
		t.Fatalf("stream after edit: %+v; want age 7200 s kept and 1000000 bytes added", s)
	}
	must(append([]string{"stream", "edit", "orders", "--retention-age", "0"}, in...)...)
	s = controlplane.Stream{}
	if err := json.Unmarshal([]byte(must(append([]string{"stream", "info", "orders"}, in...)...)), &s); err != nil {
		t.Fatal(err)
	}
	if s.Retention.MaxAgeSeconds != nil || s.Retention.MaxSizeBytes == nil {
		t.Fatalf("stream after clearing the age: %+v; want no age, the byte limit kept", s.Retention)
	}
	if _, err := admin(append([]string{"stream", "edit", "orders"}, in...)...); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Fatalf("edit without flags: %v", err)
	}
	out = must(append([]string{"stream", "ls"}, in...)...)
	if !strings.Contains(out, "STREAM") || !strings.Contains(out, "orders") || !strings.Contains(out, "bytes 1000000") {
		t.Fatalf("stream ls printed %q", out)
	}

	// A cache, used over QUIC, listed as JSON.
	must(append([]string{"cache", "add", "sessions", "--capacity-bytes", "1048576"}, in...)...)
	eventually(t, "a put to the declared cache", func() bool {
		_, err := runCLI(t, append([]string{"cache", "put", "u1", "alice", "--cache", "sessions"}, conn...)...)
		return err == nil
	})
	var cs []controlplane.Cache
	if err := json.Unmarshal([]byte(must(append([]string{"cache", "ls", "--json"}, in...)...)), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Cache != "sessions" || cs[0].CapacityBytes != 1048576 || cs[0].Durable {
		t.Fatalf("cache ls --json = %+v", cs)
	}

	// A stream in a tenant and namespace the control plane lacks declares
	// them first, and says so; once only.
	out = must("stream", "add", "clicks", "--tenant", "beta", "-n", "web")
	if !strings.Contains(out, "created tenant beta\ncreated namespace beta/web\ncreated stream beta/web/clicks") {
		t.Fatalf("stream add in a new namespace printed %q", out)
	}
	if out = must("cache", "add", "hits", "--tenant", "beta", "-n", "web"); strings.Contains(out, "created tenant") || strings.Contains(out, "created namespace") {
		t.Fatalf("cache add in an existing namespace printed %q", out)
	}

	// A wrong credential is refused with what to do.
	if _, err := admin("tenant", "ls", "--controlplane-token", "wrong"); err == nil ||
		!strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "--controlplane-token") {
		t.Fatalf("wrong token: %v", err)
	}

	// Deleting the stream stops the broker serving it.
	must(append([]string{"stream", "rm", "orders"}, in...)...)
	eventually(t, "publishes refused after stream rm", func() bool {
		_, err := runCLI(t, append([]string{"pub", "orders", "o-2"}, conn...)...)
		return err != nil
	})
	if _, err := admin(append([]string{"stream", "info", "orders"}, in...)...); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("info of a deleted stream: %v", err)
	}
	must("tenant", "rm", "acme")
	if out := must("tenant", "ls"); strings.Contains(out, "acme") {
		t.Fatalf("tenant ls after rm: %q", out)
	}
}
