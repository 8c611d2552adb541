package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// setHTTPTimeouts sets the control plane servers' read and idle
// timeouts for one test.
func setHTTPTimeouts(t *testing.T, read, idle time.Duration) {
	t.Helper()
	oldRead, oldIdle := httpReadTimeout, httpIdleTimeout
	httpReadTimeout, httpIdleTimeout = read, idle
	t.Cleanup(func() { httpReadTimeout, httpIdleTimeout = oldRead, oldIdle })
}

// clientBound is how long the test client waits for the server to close
// a connection before calling it kept open: far above the shortened
// timeouts, so it is never what ends a passing test.
const clientBound = 15 * time.Second

// closedByServer reads conn until the server closes it (io.EOF or a
// reset), failing when clientBound passes first.
func closedByServer(t *testing.T, conn net.Conn, r io.Reader, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(clientBound))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for %v", what, clientBound)
	}
}

// trickleBody sends a POST with a 1000-byte body announced, then one byte
// of it per tick until stop is closed or a write fails: a client sending
// its body as slowly as it likes.
func trickleBody(conn net.Conn, host, token string, stop <-chan struct{}) {
	fmt.Fprintf(conn, "POST /v1/tenants HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", host, token)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}
}

// checkSlowBody checks that the control plane API at host closes a
// connection trickling a request body.
func checkSlowBody(t *testing.T, host, token string) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	go trickleBody(conn, host, token, stop)
	closedByServer(t, conn, conn, "a request body trickled one byte per 50ms")
}

// checkIdle checks that the control plane API at host closes a
// keep-alive connection left idle after an answer.
func checkIdle(t *testing.T, host string) {
	t.Helper()
	idle, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /v1/system/health HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	br := bufio.NewReader(idle)
	idle.SetReadDeadline(time.Now().Add(clientBound))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET /v1/system/health: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatalf("GET /v1/system/health: the server closes the connection after the answer (%s); the idle check needs keep-alive", resp.Status)
	}
	closedByServer(t, idle, br, "an idle keep-alive connection")
}

// The control plane's HTTP servers (felix controlplane, and the one
// felix serve embeds) bound a request's read (ReadTimeout) and an idle
// keep-alive connection (IdleTimeout), not only the headers: before, a
// client could send a body (up to 1 MiB) as slowly as it liked, and
// keep idle connections open for ever, each holding a goroutine and a
// file descriptor. Each bound is checked with the other one long, so
// that neither passes for the other (net/http's idle timeout falls back
// to the read timeout).
func TestControlPlaneHTTPClosesSlowAndIdleConnections(t *testing.T) {
	const short, long = 300 * time.Millisecond, time.Hour
	servers := map[string]func(t *testing.T) cpInfo{
		"standalone": func(t *testing.T) cpInfo { return startStandaloneCP(t, "http", t.TempDir()) },
		"embedded": func(t *testing.T) cpInfo {
			nextCP := watchControlPlanes(t)
			_, _, _, stop := startServeDir(t, t.TempDir(), "--no-dev-defaults", "--controlplane-addr", "127.0.0.1:0")
			t.Cleanup(stop)
			return nextCP()
		},
	}
	for name, start := range servers {
		t.Run(name+"/slow body", func(t *testing.T) {
			setHTTPTimeouts(t, short, long)
			cp := start(t)
			checkSlowBody(t, strings.TrimPrefix(cp.base, "http://"), cp.admin)
		})
		t.Run(name+"/idle", func(t *testing.T) {
			setHTTPTimeouts(t, long, short)
			cp := start(t)
			checkIdle(t, strings.TrimPrefix(cp.base, "http://"))
		})
	}
}
