package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/syncbuf"
)

// copyLogDir copies the segment and index files of a (closed) log
// directory: a backup an operator may restore later.
func copyLogDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// restoreLogDir replaces the log directory dir with the copy in backup.
func restoreLogDir(t *testing.T, backup, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyLogDir(t, backup, dir)
}

// A durable stream whose log went back in time across a restart (restored
// from an older copy; a machine crash losing its unsynced tail is the
// same) while a queue group had consumed and acked beyond the older end:
// the group's state said "everything below 4 is done". Groups open when
// their first consumer joins, so the group clamped its state to the
// stream's end only then — after producers had published again — and the
// new records 2..4 took offsets the state called acked: they were never
// delivered. Now every group's state is reconciled with the log's end when
// the log is opened, before any publish, with a warning naming the group.
func TestRestartOlderLogCopyKeepsNewRecordsForGroups(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--no-dev-defaults", "--durable-stream", "t/n/s"}
	logDir := streamDir(dir, broker.StreamKey{Tenant: "t", Namespace: "n", Stream: "s"})
	backup := filepath.Join(t.TempDir(), "backup")

	addr, _, ca, stop := startServeDir(t, dir, args...)
	pubCLI(t, addr, ca, "t", "n", "s", "a", "b")
	stop()
	copyLogDir(t, logDir, backup) // 2 records

	addr, _, ca, stop = startServeDir(t, dir, args...)
	pubCLI(t, addr, ca, "t", "n", "s", "c", "d")
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "t", "--namespace", "n"}
	if out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "g", "--count", "4"}, conn...)...); err != nil {
		t.Fatalf("consume: %v %s", err, out)
	}
	stop()
	restoreLogDir(t, backup, logDir)

	logs := &syncbuf.Buffer{}
	addr, _, ca, stop = startServeLogs(t, dir, logs, args...)
	defer stop()
	pubCLI(t, addr, ca, "t", "n", "s", "x", "y", "z") // offsets 2, 3, 4, before g opens
	conn = []string{"--addr", addr, "--ca-file", ca, "--tenant", "t", "--namespace", "n"}
	out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "g", "--count", "3", "--idle-exit", "2s"}, conn...)...)
	if want := "offset=2 attempt=1 x\noffset=3 attempt=1 y\noffset=4 attempt=1 z\n"; err != nil || out != want {
		t.Fatalf("group g after the log went back to 2 records delivered %q (%v), want %q", out, err, want)
	}
	if l := logs.String(); !strings.Contains(l, "queue group state beyond its stream's end") ||
		!strings.Contains(l, "stream=t/n/s") || !strings.Contains(l, "group=g") ||
		!strings.Contains(l, "cursor=4") || !strings.Contains(l, "end=2") {
		t.Errorf("no warning naming t/n/s, group g, cursor 4 and end 2:\n%s", l)
	}
}

// The same through the control plane: its durable streams are declared
// after the broker started, by the control plane's applier, which must
// reconcile the groups' state before the stream takes publishes.
func TestControlPlaneOlderLogCopyKeepsNewRecordsForGroups(t *testing.T) {
	dir := t.TempDir()
	nextCP := watchControlPlanes(t)
	args := []string{"--no-dev-defaults", "--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms"}
	durable := func(b *broker.Broker) {
		eventually(t, "the durable stream in the broker", func() bool {
			st, err := b.Stream("acme", "orders", "s")
			return err == nil && st.IsDurable()
		})
	}
	logDir := streamDir(dir, broker.StreamKey{Tenant: "acme", Namespace: "orders", Stream: "s"})
	backup := filepath.Join(t.TempDir(), "backup")

	addr, b, ca, stop := startServeDir(t, dir, args...)
	cp := nextCP()
	for _, c := range []struct{ path, body string }{
		{"/v1/tenants", `{"tenant_id":"acme","display_name":"Acme"}`},
		{"/v1/tenants/acme/namespaces", `{"namespace":"orders","display_name":"Orders"}`},
		{"/v1/tenants/acme/namespaces/orders/streams", `{"stream":"s","kind":"Stream","shards":1,"retention":{},"consistency":"Leader","delivery":"AtLeastOnce","durable":true,"fsync":"always"}`},
	} {
		if code, body := call(t, "POST", cp.base+c.path, cp.admin, c.body); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	durable(b)
	pubCLI(t, addr, ca, "acme", "orders", "s", "a", "b")
	stop()
	copyLogDir(t, logDir, backup)

	addr, b, ca, stop = startServeDir(t, dir, args...)
	nextCP()
	durable(b)
	pubCLI(t, addr, ca, "acme", "orders", "s", "c", "d")
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "orders"}
	if out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "g", "--count", "4"}, conn...)...); err != nil {
		t.Fatalf("consume: %v %s", err, out)
	}
	stop()
	restoreLogDir(t, backup, logDir)

	logs := &syncbuf.Buffer{}
	addr, b, ca, stop = startServeLogs(t, dir, logs, args...)
	defer stop()
	nextCP()
	durable(b)
	pubCLI(t, addr, ca, "acme", "orders", "s", "x", "y", "z")
	conn = []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "orders"}
	out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "g", "--count", "3", "--idle-exit", "2s"}, conn...)...)
	if want := "offset=2 attempt=1 x\noffset=3 attempt=1 y\noffset=4 attempt=1 z\n"; err != nil || out != want {
		t.Fatalf("group g after the log went back to 2 records delivered %q (%v), want %q", out, err, want)
	}
	if l := logs.String(); !strings.Contains(l, "queue group state beyond its stream's end") || !strings.Contains(l, "stream=acme/orders/s") {
		t.Errorf("no warning naming acme/orders/s:\n%s", l)
	}
}
