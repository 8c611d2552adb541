package controlplane

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Every error of the API has the documented JSON body, also for a path no
// route serves (404) and a method a route does not take (405, with
// Allow), so a client can always decode {"code","message"}.
func TestUnroutedRequestsGetJSONErrors(t *testing.T) {
	c := newClient(t, startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{})))
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/nope", 404, codeNotFound},
		{"GET", "/v1/tenants/t/namespaces/n/streams/s/extra", 404, codeNotFound},
		{"PUT", "/v1/tenants/t/namespaces/n/streams/s", 405, codeMethodNotAllowed},
		{"POST", "/v1/snapshot", 405, codeMethodNotAllowed},
	} {
		req, err := http.NewRequest(tc.method, c.base+tc.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		err = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || eb.Code != tc.code || eb.Message == "" {
			t.Errorf("%s %s: %d %+v (decode: %v), want %d %s", tc.method, tc.path, resp.StatusCode, eb, err, tc.status, tc.code)
		}
		if tc.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
}

// An empty body is refused saying so, not with a bare "EOF".
func TestEmptyBodyIsNamed(t *testing.T) {
	c := newClient(t, startAPI(t, openTestStore(t, t.TempDir(), StoreOptions{})))
	eb := c.wantError("POST", "/v1/tenants", "", 400, codeValidation)
	if !strings.Contains(eb.Message, "empty") {
		t.Fatalf("message %q", eb.Message)
	}
}

// Concurrent writers lose nothing: of N creates of one stream exactly one
// wins (the others 409), concurrent PATCHes of different fields all land
// (each is one read-modify-write transaction), and the feed holds one
// change per successful write, seqs without gaps.
func TestConcurrentWritesLoseNothing(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	c := newClient(t, startAPI(t, st))
	c.must("POST", "/v1/tenants", map[string]any{"tenant_id": "t"}, 201, nil)
	c.must("POST", "/v1/tenants/t/namespaces", map[string]any{"namespace": "n"}, 201, nil)
	const creators = 8
	codes := make(chan int, creators)
	var wg sync.WaitGroup
	for range creators {
		wg.Go(func() {
			code, _ := c.call("POST", "/v1/tenants/t/namespaces/n/streams", map[string]any{"stream": "s"})
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	won := 0
	for code := range codes {
		switch code {
		case 201:
			won++
		case 409:
		default:
			t.Errorf("create: status %d", code)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates won", won)
	}
	patches := []map[string]any{
		{"retention": map[string]any{"max_age_seconds": 60}},
		{"consistency": ConsistencyQuorum},
		{"delivery": DeliveryAtLeastOnce},
		{"durable": true},
		{"fsync": FsyncAlways},
	}
	for _, p := range patches {
		wg.Go(func() { c.must("PATCH", "/v1/tenants/t/namespaces/n/streams/s", p, 200, nil) })
	}
	wg.Wait()
	s, err := st.Stream(StreamKey{"t", "n", "s"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Retention.MaxAgeSeconds == nil || *s.Retention.MaxAgeSeconds != 60 || s.Consistency != ConsistencyQuorum ||
		s.Delivery != DeliveryAtLeastOnce || !s.Durable || s.Fsync != FsyncAlways {
		t.Fatalf("a concurrent PATCH was lost: %+v", s)
	}
	page, err := st.Changes(t.Context(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + 1 + len(patches); len(page.Items) != want {
		t.Fatalf("%d changes, want %d", len(page.Items), want)
	}
	for i, ch := range page.Items {
		if ch.Seq != uint64(i+1) {
			t.Fatalf("change %d has seq %d", i, ch.Seq)
		}
	}
}
