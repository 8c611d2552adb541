package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/syncbuf"
)

// runCLISplit runs the root command with ctx and separate stdout and
// stderr (runCLI merges them).
func runCLISplit(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// waitSubscribed waits (bounded) until tenant/ns/stream has n subscriptions.
func waitSubscribed(t *testing.T, b *broker.Broker, tenant, ns, stream string, n int) *broker.Stream {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := b.Stream(tenant, ns, stream)
		if err == nil && len(s.Subscriptions()) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s/%s: %d subscription(s) never registered", tenant, ns, stream, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Only the flags whose help names a FELIX_* variable read one. Before,
// every flag of a client command did: FELIX_REPEAT=0 broke `felix pub`,
// FELIX_FROM=bogus broke `felix sub`, FELIX_TTL=-1s broke `felix cache
// put`, none of them documented anywhere. The documented ones (FELIX_ADDR,
// FELIX_CA_FILE, FELIX_NAMESPACE, FELIX_GROUP, FELIX_CACHE) keep working in
// every client command.
func TestHunt4EnvOnlyForDocumentedFlags(t *testing.T) {
	addr, b, ca := startServe(t, "--durable-stream", "default/ns2/jobs", "--stream", "default/ns2/ev", "--cache", "default/ns2/kv")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Setenv("FELIX_ADDR", addr)
	t.Setenv("FELIX_CA_FILE", ca)
	t.Setenv("FELIX_NAMESPACE", "ns2")
	t.Setenv("FELIX_GROUP", "envgroup")
	t.Setenv("FELIX_CACHE", "kv")
	// Undocumented: must be ignored.
	t.Setenv("FELIX_REPEAT", "0")
	t.Setenv("FELIX_FROM", "bogus")
	t.Setenv("FELIX_TTL", "-1s")
	t.Setenv("FELIX_COUNT", "-5")
	t.Setenv("FELIX_JSON", "true")

	if _, stderr, err := runCLISplit(ctx, "pub", "jobs", "a", "b"); err != nil {
		t.Fatalf("pub with FELIX_REPEAT=0 in the environment: %v %s", err, stderr)
	}
	if out, _, err := runCLISplit(ctx, "cache", "put", "k", "v"); err != nil || !strings.HasPrefix(out, "OK version") {
		t.Fatalf("cache put with FELIX_TTL=-1s in the environment: %q %v", out, err)
	}
	if out, _, err := runCLISplit(ctx, "cache", "get", "k"); err != nil || out != "v\n" {
		t.Fatalf("cache get (FELIX_CACHE=kv, FELIX_NAMESPACE=ns2): %q %v", out, err)
	}
	if out, _, err := runCLISplit(ctx, "queue", "consume", "jobs", "--count", "2"); err != nil || out != "offset=0 attempt=1 a\noffset=1 attempt=1 b\n" {
		t.Fatalf("queue consume: %q %v", out, err)
	}
	if out, _, err := runCLISplit(ctx, "queue", "stats", "jobs"); err != nil || !strings.Contains(out, "acked=2") {
		t.Fatalf("queue stats of FELIX_GROUP=envgroup: %q %v", out, err)
	}
	type res struct {
		out string
		err error
	}
	done := make(chan res, 1)
	go func() {
		out, _, err := runCLISplit(ctx, "sub", "ev", "--count", "1")
		done <- res{out, err}
	}()
	waitSubscribed(t, b, "default", "ns2", "ev", 1)
	if _, _, err := runCLISplit(ctx, "pub", "ev", "hello"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.out != "hello\n" { // plain, not JSON: FELIX_JSON is not a documented variable
		t.Fatalf("sub with FELIX_FROM=bogus FELIX_JSON=true in the environment: %q %v", r.out, r.err)
	}
}

// `felix sub` says at exit how many events it knows it missed (gaps in the
// offsets: here the broker's drops for a subscriber whose one-frame queue
// overflows), on stderr; stdout stays the events, and the gaps in the
// offsets printed by --json add up to that number.
func TestHunt4SubReportsMissedEvents(t *testing.T) {
	addr, b, ca := startServe(t, "--queue-capacity", "1", "--queue-policy", "drop_new")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncbuf.Buffer{}
	errb := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(out)
		cmd.SetErr(errb)
		cmd.SetArgs([]string{"sub", "demo", "--json", "--addr", addr, "--ca-file", ca})
		done <- cmd.ExecuteContext(ctx)
	}()
	s := waitSubscribed(t, b, "default", "default", "demo", 1)
	sub := s.Subscriptions()[0]
	pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	// Publish single-event frames faster than one subscriber's writer
	// takes them, until the broker has dropped some (bounded).
	for round := 0; sub.Stats().Dropped == 0; round++ {
		if round == 200 {
			t.Fatalf("no drops after %d rounds: %+v", round, sub.Stats())
		}
		for range 500 {
			if _, err := s.Publish(pctx, [][]byte{[]byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Let the queue drain, then publish a marker that is delivered: the
	// drops before it are gaps the subscriber can see.
	deadline := time.Now().Add(30 * time.Second)
	for st := sub.Stats(); st.QueueLen > 0; st = sub.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("queue never drained: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	dropped := sub.Stats().Dropped
	if _, err := s.Publish(pctx, [][]byte{[]byte("marker")}); err != nil {
		t.Fatal(err)
	}
	if st := sub.Stats(); st.Dropped != dropped {
		t.Fatalf("the marker was dropped too: %+v", st)
	}
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), `"payload":"marker"`) {
		if time.Now().After(deadline) {
			t.Fatalf("marker never printed; stderr %q", errb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // as Ctrl-C
	if err := <-done; err != nil {
		t.Fatalf("sub: %v", err)
	}
	var gaps, prev uint64
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec struct {
			Offset *uint64 `json:"offset"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Offset == nil {
			t.Fatalf("line %d %q: %v (no offset?)", i, line, err)
		}
		if i > 0 {
			gaps += *rec.Offset - prev - 1
		}
		prev = *rec.Offset
	}
	if gaps != dropped {
		t.Fatalf("offsets printed have %d missing, broker dropped %d", gaps, dropped)
	}
	want := fmt.Sprintf("felix: missed %d events\n", dropped)
	if errb.String() != want {
		t.Fatalf("stderr %q, want %q", errb.String(), want)
	}
}

// A --token-file that cannot be read is named as such, before any
// connection is made, instead of "publish auth: connection lost: felix:
// token source: token file: ..." after one.
func TestHunt4TokenFileErrorsAreClear(t *testing.T) {
	addr, _, ca := startServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{filepath.Join(t.TempDir(), "missing"), "token file: open "},
		{empty, "is empty"},
	} {
		for _, args := range [][]string{{"pub", "demo", "x"}, {"sub", "demo"}, {"cache", "get", "k"}, {"queue", "stats", "jobs"}} {
			_, _, err := runCLISplit(ctx, append(args, "--addr", addr, "--ca-file", ca, "--token-file", c.file)...)
			if err == nil {
				t.Fatalf("%v with --token-file %s: no error", args, c.file)
			}
			msg := errorLine(err)
			if !strings.HasPrefix(msg, "felix: token file") || !strings.Contains(msg, c.want) || strings.Contains(msg, "connection lost") {
				t.Errorf("%v: %q, want \"felix: token file ... %s\" and no \"connection lost\"", args, msg, c.want)
			}
		}
	}
}

// An interrupted connection attempt says so instead of "context canceled".
func TestHunt4InterruptedDialSaysSo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{{"pub", "demo", "x"}, {"sub", "demo"}, {"cache", "get", "k"}, {"queue", "consume", "jobs"}} {
		_, _, err := runCLISplit(ctx, append(args, "--addr", "127.0.0.1:1", "--insecure")...)
		if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%v: %v, want an error saying the connection to 127.0.0.1:1 was interrupted", args, err)
		}
	}
}

// A broker that is not there, and a broker whose certificate is not
// trusted, are named as such, with the address and what to do.
func TestHunt4DialFailuresExplainThemselves(t *testing.T) {
	addr, _, _ := startServe(t)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := udp.LocalAddr().String()
	udp.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t.Chdir(t.TempDir()) // no ./felix-data/dev-cert.pem to trust by default
	cmds := [][]string{{"pub", "demo", "x"}, {"sub", "demo"}, {"cache", "get", "k"}, {"queue", "stats", "jobs"}}
	errs := make(chan string, len(cmds))
	for _, args := range cmds {
		go func() {
			_, _, err := runCLISplit(ctx, append(args, "--addr", dead, "--insecure")...)
			errs <- fmt.Sprintf("%v: %v", args, err)
		}()
	}
	for range cmds {
		if e := <-errs; !strings.Contains(e, "no broker answered at "+dead) {
			t.Errorf("%s, want \"no broker answered at %s\"", e, dead)
		}
	}
	for _, args := range cmds {
		_, _, err := runCLISplit(ctx, append(args, "--addr", addr)...)
		if err == nil || !strings.Contains(err.Error(), "not trusted: pass --ca-file") {
			t.Errorf("%v against an untrusted certificate: %v", args, err)
		}
	}
}

// A refused token is explained when the CLI can see why: a Felix token for
// another tenant than --tenant (the broker only says "auth failed"), or
// one that has expired (the SDK says so).
func TestHunt4AuthFailuresExplainThemselves(t *testing.T) {
	dir := t.TempDir()
	addr, _, ca, _ := startSecureServe(t, dir, "--stream", "t1/default/demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	issue := func(ttl string) string {
		out, err := runToken(t, "issue", "--key", filepath.Join(dir, "token-key.pem"), "--tenant", "t1", "--sub", "me",
			"--perm", "stream.publish:stream:t1/*/*", "--ttl", ttl)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	good := issue("1h")
	conn := []string{"--addr", addr, "--ca-file", ca}
	if _, _, err := runCLISplit(ctx, append([]string{"pub", "demo", "x", "--tenant", "t1", "--token", good}, conn...)...); err != nil {
		t.Fatalf("good token: %v", err)
	}
	_, _, err := runCLISplit(ctx, append([]string{"pub", "demo", "x", "--tenant", "t2", "--token", good}, conn...)...)
	if err == nil || !strings.Contains(err.Error(), `auth failed`) || !strings.Contains(err.Error(), `the token is for tenant "t1", not --tenant "t2"`) {
		t.Errorf("token of another tenant: %v", err)
	}
	_, _, err = runCLISplit(ctx, append([]string{"pub", "demo", "x", "--tenant", "t1", "--token", "garbage"}, conn...)...)
	if err == nil || !strings.Contains(err.Error(), "auth failed") {
		t.Errorf("garbage token: %v", err)
	}
	signer, err := auth.LoadSignerPEM(filepath.Join(dir, "token-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := signer.Issue(auth.Claims{Tenant: "t1", Subject: "me", Perms: []string{"stream.publish:stream:t1/*/*"},
		IssuedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLISplit(ctx, append([]string{"pub", "demo", "x", "--tenant", "t1", "--token", expired}, conn...)...)
	if err == nil || !strings.Contains(err.Error(), "token expired") {
		t.Errorf("expired token: %v", err)
	}
}

// `felix pub --raw` publishes all of stdin as one message, byte for byte
// (binary data, newlines, an empty input); without it every line is one
// message, as before.
func TestHunt4PubRawStdin(t *testing.T) {
	addr, b, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type res struct {
		out string
		err error
	}
	done := make(chan res, 1)
	go func() {
		out, _, err := runCLISplit(ctx, append([]string{"sub", "demo", "--json", "--count", "4"}, conn...)...)
		done <- res{out, err}
	}()
	waitSubscribed(t, b, "default", "default", "demo", 1)
	blob := []byte("\x00\xff\nline two\r\n\x89PNG\n")
	pub := func(stdin []byte, args ...string) string {
		cmd := newRootCmd()
		var out, errb bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		cmd.SetIn(bytes.NewReader(stdin))
		cmd.SetArgs(append(append([]string{"pub", "demo"}, args...), conn...))
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("pub %v: %v", args, err)
		}
		return errb.String()
	}
	if e := pub(blob, "--raw"); !strings.HasPrefix(e, "published 1 message") {
		t.Fatalf("pub --raw: %q", e)
	}
	pub(nil, "--raw")
	if e := pub([]byte("a\nb")); !strings.HasPrefix(e, "published 2 message") {
		t.Fatalf("pub from lines: %q", e)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	var got [][]byte
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		var rec struct {
			Payload []byte `json:"payload_b64"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, rec.Payload)
	}
	want := [][]byte{blob, {}, []byte("a"), []byte("b")}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
}
