package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/syncbuf"
)

// Restarts with a changed configuration, as an operator makes them.

// pubCLI publishes msgs to tenant/ns/stream with `felix pub`.
func pubCLI(t *testing.T, addr, ca, tenant, ns, stream string, msgs ...string) {
	t.Helper()
	args := append([]string{"pub", stream, "--addr", addr, "--ca-file", ca, "--tenant", tenant, "--namespace", ns}, msgs...)
	if out, err := runCLI(t, args...); err != nil {
		t.Fatalf("pub: %v %s", err, out)
	}
}

// A stream the control plane keeps durable, named by a --stream flag at a
// restart (an operator adding it to the broker's own config, or, with
// --auto-create, a client naming it before the control plane answers):
// the control plane turns the new, empty in-memory stream into its
// durable one. That used to delete the stream's log directory on the way,
// with every acknowledged record and the queue groups' state; the log
// from before the restart is opened instead.
func TestRestartInMemoryFlagKeepsControlPlaneDurableLog(t *testing.T) {
	dir := t.TempDir()
	nextCP := watchControlPlanes(t)
	cpArgs := []string{"--no-dev-defaults", "--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms"}

	addr, b, ca, stop := startServeDir(t, dir, cpArgs...)
	defer stop()
	cp := nextCP()
	for _, c := range []struct{ path, body string }{
		{"/v1/tenants", `{"tenant_id":"acme","display_name":"Acme"}`},
		{"/v1/tenants/acme/namespaces", `{"namespace":"orders","display_name":"Orders"}`},
		{"/v1/tenants/acme/namespaces/orders/streams", `{"stream":"created","kind":"Stream","shards":1,"retention":{},"consistency":"Leader","delivery":"AtLeastOnce","durable":true,"fsync":"always"}`},
	} {
		if code, body := call(t, "POST", cp.base+c.path, cp.admin, c.body); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	eventually(t, "the durable stream in the broker", func() bool {
		st, err := b.Stream("acme", "orders", "created")
		return err == nil && st.IsDurable()
	})
	pubCLI(t, addr, ca, "acme", "orders", "created", "o1", "o2", "o3")
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "orders"}
	if out, err := runCLI(t, append([]string{"queue", "consume", "created", "-g", "billing", "--count", "1"}, conn...)...); err != nil {
		t.Fatalf("consume: %v %s", err, out)
	}
	stop()

	addr, b, ca, stop2 := startServeDir(t, dir, append(cpArgs, "--stream", "acme/orders/created")...)
	defer stop2()
	nextCP()
	st, err := b.Stream("acme", "orders", "created")
	if err != nil || !st.IsDurable() || st.Tail() != 3 {
		t.Fatalf("after the restart: %v, durable %v, tail %d; want the durable stream with its 3 records", err, err == nil && st.IsDurable(), st.Tail())
	}
	conn = []string{"--addr", addr, "--ca-file", ca, "--tenant", "acme", "--namespace", "orders"}
	if out, err := runCLI(t, append([]string{"queue", "stats", "created", "-g", "billing"}, conn...)...); err != nil || !strings.Contains(out, "lag=2") {
		t.Fatalf("the group after the restart: %q %v, want lag=2 (its ack kept)", out, err)
	}
}

// A durable stream's log that no stream serves after a restart (the
// stream declared in memory now, or not at all, or under another
// namespace) stays on disk, and the broker says so at start, naming the
// stream and the directory; declared durable again, it serves the
// records. Before, nothing was logged: the stream's history silently
// disappeared from the broker.
func TestRestartReportsDurableLogsNotServed(t *testing.T) {
	dir := t.TempDir()
	addr, _, ca, stop := startServeDir(t, dir, "--no-dev-defaults", "--durable-stream", "t/n/s")
	pubCLI(t, addr, ca, "t", "n", "s", "a", "b", "c")
	stop()
	logDir := streamDir(dir, broker.StreamKey{Tenant: "t", Namespace: "n", Stream: "s"})

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"in memory", []string{"--stream", "t/n/s"}, "declared=in-memory"},
		{"removed", nil, "declared=no"},
		{"another namespace", []string{"--durable-stream", "t/other/s"}, "declared=no"},
	} {
		logs := &syncbuf.Buffer{}
		_, _, _, stop := startServeLogs(t, dir, logs, append([]string{"--no-dev-defaults"}, c.args...)...)
		stop()
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "durable log not served") {
				line = l
			}
		}
		if !strings.Contains(line, "stream=t/n/s") || !strings.Contains(line, "dir="+logDir) || !strings.Contains(line, c.want) {
			t.Errorf("%s: no warning naming t/n/s, %s and %s; log:\n%s", c.name, logDir, c.want, logs)
		}
		if strings.Count(logs.String(), "durable log not served") != 1 {
			t.Errorf("%s: want one warning (only t/n/s is not served); log:\n%s", c.name, logs)
		}
	}

	logs := &syncbuf.Buffer{}
	_, b, _, stop3 := startServeLogs(t, dir, logs, "--no-dev-defaults", "--durable-stream", "t/n/s", "--durable-stream", "t/other/s")
	defer stop3()
	if st, err := b.Stream("t", "n", "s"); err != nil || st.Tail() != 3 {
		t.Fatalf("declared durable again: %v, want its 3 records", err)
	}
	if strings.Contains(logs.String(), "durable log not served") {
		t.Errorf("a warning while every log is served:\n%s", logs)
	}
}

// Queue group state whose stream log was removed (an operator resetting a
// stream by deleting its directory) described records that are gone: the
// group trusted its old acks for the new records taking their offsets,
// and never delivered them. Now the stale state is removed at start, with
// a warning, and the group starts over on the new log.
func TestRestartDropsGroupStateOfARemovedLog(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--no-dev-defaults", "--durable-stream", "t/n/s"}
	addr, _, ca, stop := startServeDir(t, dir, args...)
	pubCLI(t, addr, ca, "t", "n", "s", "a", "b", "c", "d")
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "t", "--namespace", "n"}
	if out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "g", "--count", "4"}, conn...)...); err != nil {
		t.Fatalf("consume: %v %s", err, out)
	}
	stop()
	if err := os.RemoveAll(streamDir(dir, broker.StreamKey{Tenant: "t", Namespace: "n", Stream: "s"})); err != nil {
		t.Fatal(err)
	}

	logs := &syncbuf.Buffer{}
	addr, _, ca, stop2 := startServeLogs(t, dir, logs, args...)
	defer stop2()
	if !strings.Contains(logs.String(), "queue group state without its stream's log removed") {
		t.Errorf("no warning about the removed group state:\n%s", logs)
	}
	pubCLI(t, addr, ca, "t", "n", "s", "x", "y")
	conn = []string{"--addr", addr, "--ca-file", ca, "--tenant", "t", "--namespace", "n"}
	out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "g", "--count", "2", "--idle-exit", "2s"}, conn...)...)
	if err != nil || out != "offset=0 attempt=1 x\noffset=1 attempt=1 y\n" {
		t.Fatalf("the group on the new log delivered %q (%v), want x and y", out, err)
	}
}

// A retention lowered across a restart applies at start: the startup log
// and the first subscriber see the stream as retained, and the disk space
// comes back at once (it waited for the first background pass, a minute
// later).
func TestRestartAppliesLoweredRetentionAtStart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--no-dev-defaults", "--durable-stream", "t/n/s", "--segment-bytes", "1024"}
	addr, _, ca, stop := startServeDir(t, dir, args...)
	msgs := make([]string, 200)
	for i := range msgs {
		msgs[i] = strings.Repeat("x", 40)
	}
	pubCLI(t, addr, ca, "t", "n", "s", msgs...)
	stop()

	_, b, _, stop2 := startServeDir(t, dir, append(args, "--retention-bytes", "4096")...)
	defer stop2()
	st, err := b.Stream("t", "n", "s")
	if err != nil {
		t.Fatal(err)
	}
	// Retention deletes whole segments while the log is over 4096 bytes:
	// at most 64 records of 64 bytes are left, so the oldest is at least
	// 136 (durable streams roll in the background, so where the segments
	// end, and how many records past 136 go, depends on when each seal ran).
	if oldest := st.Log().Oldest(); oldest < 136 {
		t.Fatalf("oldest retained offset %d at start with --retention-bytes 4096 (at most 64 records), want ≥ 136", oldest)
	}
}

// A client CA file that holds no certificate stops the broker with a
// message naming --tls-client-ca, not --tls-cert.
func TestServeNamesTheBadClientCAFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := runServeUntilReady(t, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-addr", "off",
		"--controlplane-addr", "off", "--tls-client-ca", empty)
	if err == nil || !strings.HasPrefix(err.Error(), "--tls-client-ca: ") {
		t.Fatalf("err %v, want one starting with --tls-client-ca", err)
	}
}

// SIGHUP during the drain (a log rotation's postrotate, a certificate
// deployment, a closed terminal) used to kill the broker: the handler was
// gone once the drain began, and Go's default for SIGHUP ends the
// process. Now it is handled as at any other time, and the drain goes on
// to its end, status 0.
func TestSIGHUPDuringTheDrain(t *testing.T) {
	p, _, c := startHeldDrain(t)
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the SIGHUP logged", func() bool {
		select {
		case <-p.done:
			t.Fatalf("the broker ended on SIGHUP during the drain: %v\n%s", p.err, p.out)
		default:
		}
		return strings.Contains(p.out.String(), `msg="SIGHUP: nothing to reload (development certificate)"`)
	})
	c.Close() // the drain can end now
	if code := p.waitExit(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, p.out)
	}
}

// Lowering --queue-max-groups across a restart: every group kept on disk
// opens again (its consumers and its stats), in whatever order they come
// back, and a new group is refused while the stream has that many, those
// on disk counted. Before, the groups that came back first took the slots
// and the others were refused, and a new group could take the slot of an
// existing one.
func TestRestartLoweredMaxGroupsKeepsExistingGroups(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--no-dev-defaults", "--durable-stream", "t/n/s"}
	addr, _, ca, stop := startServeDir(t, dir, args...)
	pubCLI(t, addr, ca, "t", "n", "s", "a", "b", "c")
	conn := []string{"--addr", addr, "--ca-file", ca, "--tenant", "t", "--namespace", "n"}
	for _, g := range []string{"g1", "g2", "g3"} {
		if out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", g, "--count", "1"}, conn...)...); err != nil {
			t.Fatalf("consume %s: %v %s", g, err, out)
		}
	}
	stop()

	addr, _, ca, stop2 := startServeDir(t, dir, append(args, "--queue-max-groups", "2")...)
	defer stop2()
	conn = []string{"--addr", addr, "--ca-file", ca, "--tenant", "t", "--namespace", "n"}
	if out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", "new", "--count", "1"}, conn...)...); err == nil ||
		!strings.Contains(err.Error(), "too many consumer groups") {
		t.Fatalf("a new group with 3 on disk and a limit of 2: %q %v, want refused", out, err)
	}
	for _, g := range []string{"g3", "g2", "g1"} {
		if out, err := runCLI(t, append([]string{"queue", "stats", "s", "-g", g}, conn...)...); err != nil || !strings.Contains(out, "lag=2") {
			t.Errorf("group %s after the restart: %q %v, want its stats (lag=2)", g, out, err)
		}
		if out, err := runCLI(t, append([]string{"queue", "consume", "s", "-g", g, "--count", "1"}, conn...)...); err != nil || out != "offset=1 attempt=1 b\n" {
			t.Errorf("consume %s after the restart: %q %v, want b", g, out, err)
		}
	}
}

// runServeUntilReady runs the CLI in-process and returns its error if it
// fails before listening, or nil (after stopping it) if it started.
func runServeUntilReady(t *testing.T, args ...string) error {
	t.Helper()
	started := make(chan struct{})
	serveReadyHook = func(string, *broker.Broker) { close(started) }
	defer func() { serveReadyHook = nil }()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			return errors.New("exited without an error before listening")
		}
		return err
	case <-started:
		cancel()
		<-done
		return nil
	}
}
