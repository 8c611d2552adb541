package controlplane

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testwait"
)

// smallBuffers is a listener whose connections have a small send buffer,
// so that a client that stops reading blocks the server's writes after a
// few kilobytes instead of after what the kernel would buffer by default.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10) // best effort: the kernel may round it
	}
	return c, err
}

// bigStore fills st with about n bytes of objects in one transaction, so
// that its file is far larger than what the sockets of a stalled
// download buffer.
func bigStore(t *testing.T, st *Store, n int) {
	t.Helper()
	name := strings.Repeat("x", MaxDisplayNameBytes)
	err := st.update(func(w *wtx) error {
		for i := 0; i*MaxDisplayNameBytes < n; i++ {
			id := fmt.Sprintf("t%05d", i)
			if err := w.put(bucketTenants, id, Tenant{TenantID: id, DisplayName: name}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// requestBackup asks hs for the store's backup over a connection with a
// small receive buffer, and reads nothing.
func requestBackup(t *testing.T, hs *httptest.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: felix\r\nAuthorization: Bearer %s\r\n\r\n", BackupStorePath, testToken)
	return c
}

// readBackup reads the backup's answer from c: its status and headers,
// then as much of the body as comes. It returns the bytes read, the body's
// length, and why the read ended (nil when the body was whole).
func readBackup(t *testing.T, r *bufio.Reader) (n, length int64, err error) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, -1, err
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: status %d", resp.StatusCode)
	}
	n, err = io.Copy(io.Discard, resp.Body)
	return n, resp.ContentLength, err
}

// startStallAPI serves st, with opts, on a listener with small send
// buffers.
func startStallAPI(t *testing.T, st *Store, opts Options) *httptest.Server {
	t.Helper()
	opts.Store, opts.AdminToken = st, testToken
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener = smallBuffers{hs.Listener}
	hs.Start()
	t.Cleanup(hs.Close)
	return hs
}

// A backup download whose client stops reading held the store's read
// transaction for as long as the client stayed connected, and bbolt's
// Close waits for every read transaction: the broker's shutdown (its
// control plane server's Shutdown gives up after 2 s, then it closes the
// store) hung for ever. Closing the store now ends the backups in flight:
// their connections are dropped, and Close returns.
func TestHunt15CloseEndsStalledBackup(t *testing.T) {
	st, err := Open(t.TempDir()+"/"+FileName, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bigStore(t, st, 4<<20)
	hs := startStallAPI(t, st, Options{})
	conn := requestBackup(t, hs)
	// The server sends the headers from inside the backup's read
	// transaction: once they are read, the transaction is open.
	r := bufio.NewReaderSize(conn, 4<<10)
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	testwait.Within(t, "Store.Close while a backup download is stalled", closed)
	if n, length, err := readBackup(t, r); err == nil {
		t.Fatalf("the stalled download read %d of %d bytes, all: want it cut short", n, length)
	}
}

// A client that stops reading a backup is dropped once a write has waited
// Options.BackupWriteTimeout on it, which ends the read transaction it
// held (while it is open, a write that grows the file waits, and the
// pages writes free are not reused).
func TestHunt15BackupWriteTimeoutDropsStalledClient(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	bigStore(t, st, 4<<20)
	var logs syncbuf.Buffer
	hs := startStallAPI(t, st, Options{BackupWriteTimeout: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	conn := requestBackup(t, hs)
	testwait.Eventually(t, "the stalled backup is cut short", func() bool {
		return strings.Contains(logs.String(), "backup cut short")
	})
	if n, length, err := readBackup(t, bufio.NewReader(conn)); err == nil {
		t.Fatalf("the stalled download read %d of %d bytes, all: want it cut short", n, length)
	}
	// The store is not held: it closes.
	closed := make(chan struct{})
	go func() { defer close(closed); st.Close() }()
	testwait.Within(t, "Store.Close after the stalled backup was dropped", closed)
}
