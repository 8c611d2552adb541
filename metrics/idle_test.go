package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A keep-alive connection left idle after an answer is closed by the
// server once idleTimeout passes, rather than held for ever (each held
// connection costs a goroutine and a file descriptor). The read timeout is
// set far above, so that it cannot stand in for the idle one (net/http
// falls back to ReadTimeout when IdleTimeout is zero).
func TestIdleKeepAliveConnectionClosed(t *testing.T) {
	oldRead, oldIdle := readTimeout, idleTimeout
	readTimeout, idleTimeout = time.Hour, 200*time.Millisecond
	t.Cleanup(func() { readTimeout, idleTimeout = oldRead, oldIdle })

	s := New(Options{Addr: "127.0.0.1:0", Logger: quiet})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /live HTTP/1.1\r\nHost: %s\r\n\r\n", s.Addr())
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /live: %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	// The bound of the test client, far above the server's idle timeout.
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("an idle keep-alive connection: the server kept it open for 15s")
	}
}
