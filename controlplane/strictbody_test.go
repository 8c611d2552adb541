package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// seedStreamAndCache makes t/n/s and t/n/c (capacity 100) and serves the
// store.
func seedStreamAndCache(t *testing.T) (*Store, apiClient) {
	t.Helper()
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "t"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
	must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "s"}))
	must[Cache](t)(st.CreateCache(Cache{TenantID: "t", Namespace: "n", Cache: "c", CapacityBytes: 100}))
	return st, newClient(t, startAPI(t, st))
}

const (
	testStreams = "/v1/tenants/t/namespaces/n/streams"
	testCaches  = "/v1/tenants/t/namespaces/n/caches"
)

// A body field whose name is not exactly a documented one (encoding/json
// alone matches names case-insensitively, so {"TENANT_ID":"b"} set
// tenant_id), nested ones included, and a field given twice (the last
// won) are refused with 400 validation_error naming the field, and
// change nothing.
func TestBodyFieldNamesAreExact(t *testing.T) {
	_, c := seedStreamAndCache(t)
	var before Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &before)
	for _, b := range []struct{ method, path, body, want string }{
		{"POST", "/v1/tenants", `{"tenant_id":"a","TENANT_ID":"b"}`, `unknown field "TENANT_ID"`},
		{"POST", "/v1/tenants", `{"Tenant_Id":"a"}`, `unknown field "Tenant_Id"`},
		{"POST", "/v1/tenants", `{"tenant_id":"a","tenant_id":"b"}`, `"tenant_id" given twice`},
		{"POST", "/v1/tenants", `{"tenant_id":"a","display_name":"x","DISPLAY_NAME":"y"}`, `unknown field "DISPLAY_NAME"`},
		{"POST", "/v1/tenants/t/namespaces", `{"namespace":"n2","Namespace":"n3"}`, `unknown field "Namespace"`},
		{"POST", testStreams, `{"stream":"s2","Durable":true}`, `unknown field "Durable"`},
		{"POST", testStreams, `{"stream":"s2","retention":{"MAX_AGE_SECONDS":5}}`, `unknown field "retention.MAX_AGE_SECONDS"`},
		{"POST", testStreams, `{"stream":"s2","retention":{"max_age_seconds":5,"max_age_seconds":6}}`, `"retention.max_age_seconds" given twice`},
		{"POST", testCaches, `{"cache":"c2","Capacity_Bytes":5}`, `unknown field "Capacity_Bytes"`},
		{"PATCH", testStreams + "/s", `{"Fsync":"always"}`, `unknown field "Fsync"`},
		{"PATCH", testStreams + "/s", `{"fsync":"always","fsync":"never"}`, `"fsync" given twice`},
		{"PATCH", testStreams + "/s", `{"retention":{"Max_Size_Bytes":1}}`, `unknown field "retention.Max_Size_Bytes"`},
		{"PATCH", testCaches + "/c", `{"CAPACITY_BYTES":5}`, `unknown field "CAPACITY_BYTES"`},
		{"PATCH", testCaches + "/c", `{"durable":true,"durable":false}`, `"durable" given twice`},
	} {
		eb := c.wantError(b.method, b.path, b.body, 400, codeValidation)
		if !strings.Contains(eb.Message, b.want) {
			t.Errorf("%s %s %s: message %q lacks %q", b.method, b.path, b.body, eb.Message, b.want)
		}
	}
	var after Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &after)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("refused bodies changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
	// The exact names, nested ones and nulls included, are taken.
	var s Stream
	c.must("POST", testStreams, `{"tenant_id":"t","stream":"s2","retention":{"max_age_seconds":5},"fsync":"always"}`, 201, &s)
	if s.Retention.MaxAgeSeconds == nil || *s.Retention.MaxAgeSeconds != 5 || s.Fsync != FsyncAlways {
		t.Fatalf("created %+v", s)
	}
	s = Stream{}
	c.must("PATCH", testStreams+"/s2", `{"retention":{"max_size_bytes":7},"durable":null}`, 200, &s)
	if s.Retention.MaxSizeBytes == nil || *s.Retention.MaxSizeBytes != 7 || s.Retention.MaxAgeSeconds != nil {
		t.Fatalf("patched %+v", s)
	}
}

// A body that is not a JSON object (null, a number, a string) is refused:
// a PATCH of null was taken as an empty patch.
func TestBodyMustBeAnObject(t *testing.T) {
	_, c := seedStreamAndCache(t)
	for _, b := range []struct{ method, path, body string }{
		{"PATCH", testStreams + "/s", `null`},
		{"PATCH", testCaches + "/c", ` null `},
		{"PATCH", testCaches + "/c", `5`},
		{"POST", "/v1/tenants", `"t2"`},
	} {
		eb := c.wantError(b.method, b.path, b.body, 400, codeValidation)
		if !strings.Contains(eb.Message, "want a JSON object") {
			t.Errorf("%s %s %s: message %q", b.method, b.path, b.body, eb.Message)
		}
	}
}

// A PATCH that changes nothing — {}, fields set to null, or every field
// set to the value it has — answers 200 with the object as it is and
// records no change: the feed's head stays, nothing is sent to
// followers. A PATCH that changes a field still records one.
func TestNoOpPatchRecordsNoChange(t *testing.T) {
	st, c := seedStreamAndCache(t)
	var before Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &before)
	for _, b := range []struct{ path, body string }{
		{testStreams + "/s", `{}`},
		{testStreams + "/s", `{"durable":null,"retention":null}`},
		{testStreams + "/s", `{"fsync":"interval","durable":false,"consistency":"Leader","delivery":"AtMostOnce","retention":{}}`},
		{testCaches + "/c", `{}`},
		{testCaches + "/c", `{"capacity_bytes":100,"display_name":"","durable":false}`},
	} {
		code, got := c.call("PATCH", b.path, b.body)
		if code != 200 {
			t.Fatalf("PATCH %s %s: %d %s", b.path, b.body, code, got)
		}
	}
	var s Stream
	c.must("PATCH", testStreams+"/s", `{}`, 200, &s)
	if !reflect.DeepEqual(s, before.Streams[0]) {
		t.Fatalf("empty PATCH answered %+v, want %+v", s, before.Streams[0])
	}
	if _, err := st.UpdateCache(CacheKey{"t", "n", "c"}, CachePatch{}); err != nil {
		t.Fatal(err)
	}
	var p ChangesPage
	c.must("GET", fmt.Sprintf("/v1/changes?since=%d", before.NextSeq), nil, 200, &p)
	if len(p.Items) != 0 || p.NextSeq != before.NextSeq {
		t.Fatalf("no-op PATCHes recorded %d changes (next_seq %d, was %d)", len(p.Items), p.NextSeq, before.NextSeq)
	}
	c.must("PATCH", testCaches+"/c", `{"capacity_bytes":200}`, 200, nil)
	c.must("GET", fmt.Sprintf("/v1/changes?since=%d", before.NextSeq), nil, 200, &p)
	if len(p.Items) != 1 || p.Items[0].Op != OpUpdated || p.Items[0].Key.Cache != "c" {
		t.Fatalf("a real PATCH recorded %+v", p)
	}
}

// A body over MaxBodyBytes is 413 too_large saying the limit, not 400; a
// Client's error unwraps to ErrTooLarge.
func TestOversizedBodyIs413(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	srv, err := NewServer(Options{Store: st, AdminToken: testToken, Logger: quiet, MaxBodyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c := newClient(t, hs)
	big := `{"tenant_id":"t","display_name":"` + strings.Repeat("x", 100) + `"}`
	eb := c.wantError("POST", "/v1/tenants", big, http.StatusRequestEntityTooLarge, codeTooLarge)
	if !strings.Contains(eb.Message, "64 bytes") {
		t.Fatalf("message %q does not say the limit", eb.Message)
	}
	c.must("POST", "/v1/tenants", `{"tenant_id":"t"}`, 201, nil) // under the limit
	_, err = NewClient(hs.URL, testToken, nil).CreateTenant(context.Background(), Tenant{TenantID: "u", DisplayName: strings.Repeat("y", 100)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("client error %v, want ErrTooLarge", err)
	}
	// The default limit, 1 MiB.
	c = newClient(t, startAPI(t, st))
	eb = c.wantError("POST", "/v1/tenants", `{"tenant_id":"t2","display_name":"`+strings.Repeat("x", 2<<20)+`"}`, http.StatusRequestEntityTooLarge, codeTooLarge)
	if !strings.Contains(eb.Message, "1048576 bytes") {
		t.Fatalf("message %q does not say the limit", eb.Message)
	}
	if _, err := st.Tenant("t2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oversized create made the tenant: %v", err)
	}
}

// A body nested deeper than any request's fields (no field nests more
// than two objects) is refused at once, naming the depth, without
// walking it: the field check's recursion grew the stack with the
// body's depth, and a megabyte of '[' took minutes and the memory.
func TestDeeplyNestedBodyIsRefused(t *testing.T) {
	_, c := seedStreamAndCache(t)
	for _, body := range []string{
		`{"stream":"s2","retention":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		`{"stream":"s2","retention":` + strings.Repeat(`[{"a":`, 10000) + `1` + strings.Repeat("}]", 10000) + `}`,
	} {
		eb := c.wantError("POST", testStreams, body, 400, codeValidation)
		if !strings.Contains(eb.Message, "nested deeper than") {
			t.Errorf("message %.200q", eb.Message)
		}
	}
}
