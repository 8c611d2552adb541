package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// `felix status` against HTTP servers that are not a healthy broker: an
// answer that is not an overview (garbage, cut off, another JSON
// document) is an error, not a table of zeros; an error status is
// reported with the start of its body.
func TestHunt10StatusRefusesWhatIsNotAnOverview(t *testing.T) {
	bodies := map[string]string{
		"/garbage":   "<html>hello</html>",
		"/truncated": `{"time":"2026-11-30T18:00:00Z","uptime_seconds":12,"status":"ready","streams":[{"tenant":"t"`,
		"/null":      "null",
		"/other":     `{"name":"some other service","version":"1.0"}`,
		"/empty":     "",
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if prefix == "fail" {
			http.Error(w, "overloaded\n"+strings.Repeat("x", 4096), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(bodies["/"+prefix]))
	}))
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")
	// --metrics-addr is host:port; a path after it picks the answer.
	for name := range bodies {
		out, err := runCLI(t, "status", "--metrics-addr", host+name+"/x", "--interval", "0", "--timeout", "5s")
		if err == nil {
			t.Errorf("status of %s succeeded:\n%s", name, out)
		}
	}
	out, err := runCLI(t, "status", "--metrics-addr", host+"/fail/x", "--interval", "0", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "overloaded") || len(err.Error()) > 2048 {
		t.Fatalf("status of a 503: %v\n%s", err, out)
	}
}

// A broker that does not answer: each read gives up after --timeout, not
// after --timeout plus the --interval it never got to wait.
func TestHunt10StatusSlowBrokerTimesOut(t *testing.T) {
	release := make(chan struct{})
	var reqs atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hs.Close()
	defer close(release)
	host := strings.TrimPrefix(hs.URL, "http://")
	start := time.Now()
	_, err := runCLI(t, "status", "--metrics-addr", host, "--interval", "20s", "--timeout", "200ms")
	if err == nil || !strings.Contains(err.Error(), "is the broker running") {
		t.Fatalf("status of a hanging broker: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("status of a hanging broker gave up after %v; want about --timeout (200ms)", d)
	}

	// Slow on the second read only: the rates' wait is not taken from
	// that read's --timeout.
	hs2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1)%2 == 0 {
			time.Sleep(300 * time.Millisecond)
		}
		w.Write([]byte(`{"status":"ready","uptime_seconds":3}`))
	}))
	defer hs2.Close()
	reqs.Store(0)
	out, err := runCLI(t, "status", "--metrics-addr", strings.TrimPrefix(hs2.URL, "http://"), "--interval", "300ms", "--timeout", "1s")
	if err != nil || !strings.Contains(out, "broker ready, up 3s") {
		t.Fatalf("status with a slow second read: %v\n%s", err, out)
	}
}
