package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// GET /v1/admin/backup/store answers a copy of the store that opens as a
// store with the same ID and objects, while writes go on: every copy taken
// during a stream of creates is consistent (bbolt's check passes) and
// holds a prefix of them.
func TestBackupEndpointConsistentWhileWriting(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "acme"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "acme", Namespace: "orders"}))
	hs := startAPI(t, st)
	c := newClient(t, hs)

	const creates = 40
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range creates {
			if _, err := st.CreateStream(Stream{TenantID: "acme", Namespace: "orders", Stream: "s" + strconv.Itoa(i), Durable: true}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	dir := t.TempDir()
	var last StoreFileInfo
	for i := 0; ; i++ {
		code, body := c.call("GET", "/v1/admin/backup/store", nil)
		if code != http.StatusOK {
			t.Fatalf("backup: status %d: %s", code, body)
		}
		path := filepath.Join(dir, fmt.Sprintf("copy-%d.db", i))
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := CheckStoreFile(path)
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if info.ID != st.ID() || info.Tenants != 1 || info.Namespaces != 1 || info.Streams < last.Streams || info.Bytes != int64(len(body)) {
			t.Fatalf("copy %d: %+v (store %s; previous copy %d streams)", i, info, st.ID(), last.Streams)
		}
		last = info
		if info.Streams == creates {
			break
		}
	}
	wg.Wait()

	// The last copy is a store: Open takes it as it is.
	cp, err := Open(filepath.Join(dir, fmt.Sprintf("copy-%d.db", 0)), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp.Close()
	final := filepath.Join(t.TempDir(), FileName)
	code, body := c.call("GET", "/v1/admin/backup/store", nil)
	if code != http.StatusOK {
		t.Fatalf("backup: %d", code)
	}
	if err := os.WriteFile(final, body, 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(final, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	streams, err := restored.Streams(NamespaceKey{"acme", "orders"})
	if err != nil || len(streams) != creates || restored.ID() != st.ID() {
		t.Fatalf("restored: %d streams, id %s (want %d, %s): %v", len(streams), restored.ID(), creates, st.ID(), err)
	}
}

// The endpoint is admin only, and says what it is.
func TestBackupEndpointHeadersAndAuth(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	hs := startAPI(t, st)
	apiClient{t: t, base: hs.URL}.wantError("GET", "/v1/admin/backup/store", nil, http.StatusUnauthorized, codeUnauthorized)
	apiClient{t: t, base: hs.URL, token: "guess"}.wantError("GET", "/v1/admin/backup/store", nil, http.StatusForbidden, codeForbidden)
	req, _ := http.NewRequest("GET", hs.URL+"/v1/admin/backup/store", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "application/octet-stream" || resp.ContentLength != int64(buf.Len()) || buf.Len() == 0 {
		t.Fatalf("headers %v, %d bytes", resp.Header, buf.Len())
	}
}

// BackupFile reads the file of a closed store; while a store has it open
// it fails with ErrStoreInUse instead of waiting for ever, and the copy
// of the closed file opens as the same store.
func TestBackupFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	st, err := Open(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "acme"}))
	var buf bytes.Buffer
	if _, err := BackupFile(path, &buf, 50*time.Millisecond); !errors.Is(err, ErrStoreInUse) {
		t.Fatalf("open store: %v, want ErrStoreInUse", err)
	}
	if _, err := CheckStoreFile(path); !errors.Is(err, ErrStoreInUse) {
		t.Fatalf("check open store: %v, want ErrStoreInUse", err)
	}
	id := st.ID()
	st.Close()
	n, err := BackupFile(path, &buf, 0)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("closed store: %d bytes (%d written): %v", n, buf.Len(), err)
	}
	cp := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(cp, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := CheckStoreFile(cp)
	if err != nil || info.ID != id || info.Tenants != 1 {
		t.Fatalf("copy: %+v: %v", info, err)
	}
	if _, err := BackupFile(filepath.Join(dir, "missing.db"), &buf, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(cp, []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckStoreFile(cp); err == nil {
		t.Fatal("CheckStoreFile accepted junk")
	}
}
