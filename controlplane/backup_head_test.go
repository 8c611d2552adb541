package controlplane

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// bodyCounter counts the body bytes a handler writes, whatever the server
// then does with them (for a HEAD it drops them).
type bodyCounter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c bodyCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (c bodyCounter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// A HEAD of the backup route read the whole store (bbolt's Tx.WriteTo)
// for the server to drop every byte: it now answers the GET's status and
// headers, Content-Length included (the read transaction's size), and
// copies nothing. Its authentication is the GET's.
func TestBackupHeadCopiesNothing(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	bigStore(t, st, 4<<20)
	srv, err := NewServer(Options{Store: st, AdminToken: testToken, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	served := make(chan struct{}, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		srv.ServeHTTP(bodyCounter{ResponseWriter: w, n: &written}, r)
	}))
	t.Cleanup(hs.Close)
	do := func(method, token string) *http.Response {
		t.Helper()
		written.Store(0)
		req, err := http.NewRequest(method, hs.URL+BackupStorePath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatalf("%s: reading the body: %v", method, err)
		}
		resp.Body.Close()
		<-served // the handler has returned: written is final
		return resp
	}

	get := do("GET", testToken)
	size := written.Load()
	if get.StatusCode != http.StatusOK || size < 4<<20 || get.ContentLength != size {
		t.Fatalf("GET: status %d, Content-Length %d, %d bytes written", get.StatusCode, get.ContentLength, size)
	}
	head := do("HEAD", testToken)
	if n := written.Load(); n != 0 {
		t.Fatalf("HEAD: the handler wrote %d body bytes (the store is %d): want none", n, size)
	}
	if head.StatusCode != http.StatusOK || head.ContentLength != size {
		t.Fatalf("HEAD: status %d, Content-Length %d, want 200 and %d", head.StatusCode, head.ContentLength, size)
	}
	for _, h := range []string{"Content-Type", "Content-Disposition", "Cache-Control"} {
		if got, want := head.Header.Get(h), get.Header.Get(h); got != want || got == "" {
			t.Errorf("HEAD: %s %q, GET's %q", h, got, want)
		}
	}
	if resp := do("HEAD", ""); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("HEAD without a token: status %d, headers %v", resp.StatusCode, resp.Header)
	}
	if resp := do("HEAD", "guess"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("HEAD with a wrong token: status %d", resp.StatusCode)
	}
}
