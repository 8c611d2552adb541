package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/metrics"
)

// metricsAddrIn returns the address the broker's log says its metrics
// server listens on.
func metricsAddrIn(t *testing.T, logs *syncbuf.Buffer) string {
	t.Helper()
	re := regexp.MustCompile(`metrics listening"? addr=(\S+)`)
	var addr string
	eventually(t, "the metrics address in the log", func() bool {
		m := re.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// wantLines fails the test for each of res that out does not match.
func wantLines(t *testing.T, out string, res ...*regexp.Regexp) {
	t.Helper()
	for _, want := range res {
		if !want.MatchString(out) {
			t.Errorf("status output lacks %s:\n%s", want, out)
		}
	}
}

// statusJSON runs `felix status --json` (one read) against maddr.
func statusJSON(t *testing.T, maddr string) metrics.Overview {
	t.Helper()
	out, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0", "--json")
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var ov metrics.Overview
	if err := json.Unmarshal([]byte(out), &ov); err != nil {
		t.Fatalf("status --json is not an overview: %v\n%s", err, out)
	}
	return ov
}

// `felix status` shows what the broker serves: the streams with the
// events published to them, the cache with its entries, the group with
// its lag; --json is the overview itself; a broker that is not there is
// a clear error.
func TestStatusShowsWhatTheBrokerServes(t *testing.T) {
	dir := t.TempDir()
	logs := &syncbuf.Buffer{}
	addr, _, ca, stop := startServeLogs(t, dir, logs, "--log-level", "info")
	defer stop()
	maddr := metricsAddrIn(t, logs)
	conn := []string{"--addr", addr, "--ca-file", ca}
	if out, err := runCLI(t, append([]string{"pub", "jobs", "j1", "j2", "j3"}, conn...)...); err != nil {
		t.Fatalf("pub: %v %s", err, out)
	}
	if out, err := runCLI(t, append([]string{"cache", "put", "greeting", "hi"}, conn...)...); err != nil {
		t.Fatalf("cache put: %v %s", err, out)
	}
	if out, err := runCLI(t, append([]string{"queue", "consume", "jobs", "--group", "workers", "--count", "1"}, conn...)...); err != nil {
		t.Fatalf("queue consume: %v %s", err, out)
	}

	out, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "600ms")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	wantLines(t, out,
		regexp.MustCompile(`(?m)^broker ready, up \S+; connections: \d+ open`),
		regexp.MustCompile(`(?m)^default/default/jobs\s+durable\s+3\s+3\s+\d+\s`), // next offset 3, 3 published
		regexp.MustCompile(`(?m)^default/default/demo\s+memory\s+0\s+0\s`),
		regexp.MustCompile(`(?m)^default/default/jobs\s+workers\s+\d+\s+2\s`), // lag 2 after one of three acked
		regexp.MustCompile(`(?m)^default/default/demo\s+1\s+\d+\s`),           // the cache's one entry
		regexp.MustCompile(`(?m)^subscriptions: none$`),
	)

	ov := statusJSON(t, maddr)
	found := false
	for _, s := range ov.Streams {
		if s.Stream == "jobs" {
			found = s.Published == 3 && s.Durable
		}
	}
	if !found || ov.Status != "ready" {
		t.Fatalf("overview: status %q, streams %+v", ov.Status, ov.Streams)
	}

	// --watch: --count reports, each whole, separated by a blank line when
	// the output is not a terminal (no screen clearing).
	out, err = runCLI(t, "status", "--metrics-addr", maddr, "--interval", "100ms", "--watch", "--count", "3")
	if err != nil || strings.Count(out, "broker ready, up") != 3 || strings.Count(out, "\nstreams (") != 3 || strings.Contains(out, "\033") {
		t.Fatalf("status --watch --count 3: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0", "--watch"); err == nil || !strings.Contains(err.Error(), "--interval") {
		t.Fatalf("status --watch --interval 0: %v", err)
	}

	stop()
	if _, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0", "--timeout", "2s"); err == nil ||
		!strings.Contains(err.Error(), "is the broker running") {
		t.Fatalf("status of a stopped broker: %v", err)
	}
}

// `felix status` lists the request/reply services: one served by an SDK
// client with its responder and answered requests, one nobody serves
// with its refused request; --json carries the same.
func TestStatusShowsServices(t *testing.T) {
	logs := &syncbuf.Buffer{}
	addr, _, ca, stop := startServeLogs(t, t.TempDir(), logs, "--log-level", "info")
	defer stop()
	maddr := metricsAddrIn(t, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc, err := c.Serve(ctx, "default", "echo", func(_ context.Context, req []byte) ([]byte, error) { return req, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for range 3 {
		if _, err := c.Request(ctx, "default", "echo", []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Request(ctx, "default", "nobody", nil); !errors.Is(err, client.ErrNoResponders) {
		t.Fatalf("request to nobody: %v", err)
	}

	out, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	wantLines(t, out,
		regexp.MustCompile(`(?m)^services \(2\)\nSERVICE\s+RESPONDERS\s+IN FLIGHT\s+REQUESTS\s+REQUESTS/S\s+REPLIES\s+ERRORS\s+TIMEOUTS\s+NO RESPONDERS\s+GONE\s+ABANDONED$`),
		// 1 responder, 0 in flight, 3 requests, no rate (one read), 3 replies, no failures
		regexp.MustCompile(`(?m)^default/default/echo\s+1\s+0\s+3\s+-\s+3\s+0\s+0\s+0\s+0\s+0$`),
		// nobody serving: 1 request refused
		regexp.MustCompile(`(?m)^default/default/nobody\s+0\s+0\s+0\s+-\s+0\s+0\s+0\s+1\s+0\s+0$`),
	)

	ov := statusJSON(t, maddr)
	if len(ov.Services) != 2 {
		t.Fatalf("services %+v", ov.Services)
	}
	if e := ov.Services[0]; e.Service != "echo" || e.Responders != 1 || e.Requests != 3 || e.Replies != 3 || e.NoResponders != 0 {
		t.Errorf("echo: %+v", e)
	}
	if n := ov.Services[1]; n.Service != "nobody" || n.Responders != 0 || n.Requests != 0 || n.NoResponders != 1 {
		t.Errorf("nobody: %+v", n)
	}
}

// --metrics-tls serves metrics, health, the overview and the dashboard
// over HTTPS with the broker's certificate; felix status --metrics-tls
// reads it with the CA given (plain HTTP gets a hint to use it), and a
// client that does not trust the certificate gets nothing.
func TestMetricsOverHTTPS(t *testing.T) {
	logs := &syncbuf.Buffer{}
	_, _, ca, stop := startServeLogs(t, t.TempDir(), logs, "--log-level", "info", "--metrics-tls")
	defer stop()
	maddr := metricsAddrIn(t, logs)
	if !strings.Contains(logs.String(), "scheme=https") {
		t.Fatalf("the metrics server does not say https:\n%s", logs.String())
	}
	out, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0", "--metrics-tls", "--ca-file", ca)
	if err != nil || !strings.Contains(out, "broker ready") {
		t.Fatalf("status over https: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "status", "--metrics-addr", maddr, "--interval", "0"); err == nil || !strings.Contains(err.Error(), "pass --metrics-tls") {
		t.Fatalf("status over plain http: %v\n%s", err, out)
	}
	hc, err := httpClientWithCA(ca)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/live", "/ready", "/metrics", "/"} {
		resp, err := hc.Get("https://" + maddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
			t.Fatalf("GET %s: %s, TLS %+v", path, resp.Status, resp.TLS)
		}
	}
	if _, err := http.Get("https://" + maddr + "/live"); err == nil {
		t.Fatal("a client without the CA read the metrics over https")
	}
	if _, err := runCLI(t, "serve", "--metrics-addr", "off", "--metrics-tls", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "metrics-tls") {
		t.Fatalf("--metrics-tls with --metrics-addr off: %v", err)
	}
}
