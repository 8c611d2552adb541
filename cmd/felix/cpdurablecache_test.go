package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/syncbuf"
)

// A cache the embedded control plane declares durable follows --fsync (it
// took the interval policy whatever --fsync said), and keeps its entries
// across a restart of the broker.
func TestControlPlaneDurableCacheFollowsFsync(t *testing.T) {
	dir := t.TempDir()
	nextCP := watchControlPlanes(t)
	args := []string{"--no-dev-defaults", "--fsync", "always", "--log-level", "info",
		"--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms"}
	logs := &syncbuf.Buffer{}
	addr, _, ca, stop := startServeLogs(t, dir, logs, args...)
	cp := nextCP()
	for _, c := range []struct{ path, body string }{
		{"/v1/tenants", `{"tenant_id":"acme","display_name":"Acme"}`},
		{"/v1/tenants/acme/namespaces", `{"namespace":"web","display_name":"Web"}`},
		{"/v1/tenants/acme/namespaces/web/caches", `{"cache":"sessions","durable":true}`},
	} {
		if code, body := call(t, "POST", cp.base+c.path, cp.admin, c.body); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	eventually(t, "the durable cache opened", func() bool { return strings.Contains(logs.String(), "durable cache opened") })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "durable cache opened") && !strings.Contains(line, "fsync=always") {
			t.Errorf("control-plane durable cache under --fsync always: %s", line)
		}
	}
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "web", "--cache", "sessions"}
	if out, err := runCLI(t, append([]string{"cache", "put", "u1", "alice"}, conn...)...); err != nil {
		t.Fatalf("put: %v %s", err, out)
	}
	stop()

	addr, _, ca, stop = startServeDir(t, dir, args...)
	defer stop()
	nextCP()
	conn = []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "web", "--cache", "sessions"}
	var out string
	eventually(t, "the entry after a restart", func() bool {
		var err error
		out, err = runCLI(t, append([]string{"cache", "get", "u1"}, conn...)...)
		return err == nil
	})
	if out != "alice\n" {
		t.Fatalf("get after a restart: %q, want alice", out)
	}
}
