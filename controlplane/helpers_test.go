package controlplane

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

const testToken = "s3cret-admin"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openTestStore(t *testing.T, dir string, opts StoreOptions) *Store {
	t.Helper()
	st, err := Open(filepath.Join(dir, FileName), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startAPI serves st on a real 127.0.0.1 listener with the static test token.
func startAPI(t *testing.T, st *Store) *httptest.Server {
	t.Helper()
	srv, err := NewServer(Options{Store: st, AdminToken: testToken, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs
}

type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func newClient(t *testing.T, hs *httptest.Server) apiClient {
	return apiClient{t: t, base: hs.URL, token: testToken}
}

// call sends body as JSON and returns the status and raw response.
func (c apiClient) call(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = bytes.NewBufferString(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				c.t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// must calls and checks the status, decoding the answer into out.
func (c apiClient) must(method, path string, body any, want int, out any) {
	c.t.Helper()
	code, b := c.call(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// wantError calls and checks the status and error code.
func (c apiClient) wantError(method, path string, body any, status int, code string) errorBody {
	c.t.Helper()
	var eb errorBody
	c.must(method, path, body, status, &eb)
	if eb.Code != code {
		c.t.Fatalf("%s %s: code %q, want %q (%s)", method, path, eb.Code, code, eb.Message)
	}
	return eb
}

func ptr[T any](v T) *T { return &v }
