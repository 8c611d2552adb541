package controlplane

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// fillStreams creates streams with long names in t/n until the store
// refuses one (or max were created); it returns the error that stopped it.
func fillStreams(t *testing.T, st *Store, prefix string, max int) (int, error) {
	t.Helper()
	for i := range max {
		name := fmt.Sprintf("%s%03d-%s", prefix, i, strings.Repeat("<", 200)) // '<' is 6 bytes of JSON
		if _, err := st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: name}); err != nil {
			return i, err
		}
	}
	return max, nil
}

// The store bounds the bytes of its objects (what a snapshot and the
// unpaginated lists carry): past StoreOptions.MaxObjectBytes, creates
// are refused with ErrLimit (HTTP 409 limit_exceeded), deletes make room,
// and the count survives reopening, also of a store written before the
// bound existed.
func TestStoreBoundsObjectBytes(t *testing.T) {
	dir := t.TempDir()
	opts := StoreOptions{MaxObjectBytes: 16 << 10}
	st, err := Open(filepath.Join(dir, FileName), opts)
	if err != nil {
		t.Fatal(err)
	}
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "t"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
	n, err := fillStreams(t, st, "", 1000)
	if !errors.Is(err, ErrLimit) || n == 0 {
		t.Fatalf("after %d streams: %v, want ErrLimit", n, err)
	}
	if !strings.Contains(err.Error(), "16384") || !strings.Contains(err.Error(), "delete") {
		t.Fatalf("limit error does not say the limit and what to do: %v", err)
	}
	c := newClient(t, startAPI(t, st))
	eb := c.wantError("POST", "/v1/tenants/t/namespaces/n/caches", map[string]any{"cache": strings.Repeat("<", 250), "display_name": strings.Repeat("<", 1000)}, 409, codeLimit)
	if !strings.Contains(eb.Message, "limit") {
		t.Fatalf("API message %q", eb.Message)
	}
	_, body := c.call("GET", "/v1/snapshot", nil)
	if len(body) > 2*int(opts.MaxObjectBytes) {
		t.Fatalf("snapshot of %d bytes from a store bounded to %d", len(body), opts.MaxObjectBytes)
	}
	// A delete makes room; deletes and shrinking updates are never refused.
	first := fmt.Sprintf("%03d-%s", 0, strings.Repeat("<", 200))
	if err := st.DeleteStream(StreamKey{"t", "n", first}); err != nil {
		t.Fatal(err)
	}
	must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "short"}))
	st.Close()

	// Reopened, the store is still full; emptied, it fills again.
	st = openTestStore(t, dir, opts)
	if n, err := fillStreams(t, st, "r", 1000); !errors.Is(err, ErrLimit) || n > 1 {
		t.Fatalf("reopened: %d more streams, %v, want ErrLimit", n, err)
	}
	if err := st.DeleteNamespace(NamespaceKey{"t", "n"}); err != nil {
		t.Fatal(err)
	}
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
	if n, err := fillStreams(t, st, "e", 1000); !errors.Is(err, ErrLimit) || n == 0 {
		t.Fatalf("after emptying: %d streams, %v", n, err)
	}
	st.Close()

	// A store written before the bound (no recorded count) is counted
	// when opened.
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaObjectBytes) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st = openTestStore(t, dir, opts)
	if _, err := fillStreams(t, st, "l", 1); !errors.Is(err, ErrLimit) {
		t.Fatalf("reopened without a recorded count: %v, want ErrLimit", err)
	}
}

// With the default bound, a store never grows past what a broker
// following it over HTTP can read: before the bound, the store took every
// create and the follower's snapshot failed ("answer larger than") on
// every sync, forever.
func TestStoreDefaultBoundFitsHTTPFollower(t *testing.T) {
	defer func(n int64) { maxSourceBody = n }(maxSourceBody)
	maxSourceBody = 32 << 10
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "t"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
	if _, err := fillStreams(t, st, "", 1000); err != nil && !errors.Is(err, ErrLimit) {
		t.Fatal(err)
	}
	rig := newBrokerRig(t)
	f := newTestFollower(t, NewHTTPSource(startAPI(t, st).URL, testToken, nil), rig.applier)
	mustSync(t, f)
	if rig.stream("t", "n", fmt.Sprintf("%03d-%s", 0, strings.Repeat("<", 200))) == nil {
		t.Fatal("not applied")
	}
}
