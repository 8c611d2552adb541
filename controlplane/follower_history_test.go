package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// swapSource is a Source whose control plane can be replaced, as when a
// control plane restarts on another (or a restored) store file.
type swapSource struct {
	mu  sync.Mutex
	src Source
}

func (s *swapSource) set(src Source) { s.mu.Lock(); s.src = src; s.mu.Unlock() }
func (s *swapSource) get() Source    { s.mu.Lock(); defer s.mu.Unlock(); return s.src }
func (s *swapSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	return s.get().Snapshot(ctx)
}
func (s *swapSource) Changes(ctx context.Context, since uint64, limit int) (*ChangesPage, error) {
	return s.get().Changes(ctx, since, limit)
}

// backup copies the open store's file, as an operator's backup would.
func backup(t *testing.T, st *Store, path string) {
	t.Helper()
	if err := st.db.View(func(tx *bolt.Tx) error { return tx.CopyFile(path, 0o600) }); err != nil {
		t.Fatal(err)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func seedTN(t *testing.T, st *Store) {
	t.Helper()
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "t"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
}

// A control plane that comes back on an empty store (another data dir, a
// lost file) must not make a running broker delete its durable streams and
// their logs: the broker keeps them and says so.
func TestFollowerKeepsDataWhenStoreReplaced(t *testing.T) {
	old := openTestStore(t, t.TempDir(), StoreOptions{})
	seedTN(t, old)
	must[Stream](t)(old.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "orders", Durable: true, Fsync: FsyncAlways}))
	rig := newBrokerRig(t)
	src := &swapSource{src: old}
	f := newTestFollower(t, src, rig.applier)
	mustSync(t, f)
	s := rig.stream("t", "n", "orders")
	if s == nil {
		t.Fatal("stream not applied")
	}
	if _, err := s.Publish(t.Context(), [][]byte{[]byte("precious")}); err != nil {
		t.Fatal(err)
	}
	dir := StreamDir(rig.dataDir, s.Key())

	src.set(openTestStore(t, t.TempDir(), StoreOptions{})) // a fresh, empty store
	mustSync(t, f)
	if rig.stream("t", "n", "orders") != s {
		t.Fatal("a replaced control plane store made the broker delete a durable stream")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("log directory after the store was replaced: %v", err)
	}
	if st := f.Stats(); st.Resyncs != 1 || st.Kept != 3 {
		t.Fatalf("stats %+v, want 1 resync and 3 kept objects (tenant, namespace, stream)", st)
	}
}

// A control plane restored from an older backup (same store id, shorter
// history) must not delete what was created after the backup.
func TestFollowerKeepsDataWhenStoreRestoredFromBackup(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir, StoreOptions{})
	seedTN(t, st)
	bak := filepath.Join(t.TempDir(), FileName)
	backup(t, st, bak)
	must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "after", Durable: true}))
	rig := newBrokerRig(t)
	src := &swapSource{src: st}
	f := newTestFollower(t, src, rig.applier)
	mustSync(t, f)
	s := rig.stream("t", "n", "after")
	if s == nil {
		t.Fatal("stream not applied")
	}
	if _, err := s.Publish(t.Context(), [][]byte{[]byte("precious")}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	src.set(openTestStore(t, filepath.Dir(bak), StoreOptions{}))
	mustSync(t, f)
	if rig.stream("t", "n", "after") != s {
		t.Fatal("a control plane restored from a backup made the broker delete a newer durable stream")
	}
	if st := f.Stats(); st.Resyncs != 1 || st.Kept != 1 {
		t.Fatalf("stats %+v, want 1 resync and 1 kept object", st)
	}
}

// A restored control plane that has taken new writes past the follower's
// position serves a different history under the same seqs: the follower
// must notice rather than skip the changes it has not seen.
func TestFollowerDetectsDivergedHistory(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	seedTN(t, st)
	bak := filepath.Join(t.TempDir(), FileName)
	backup(t, st, bak)
	must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "x"})) // seq 3
	must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "w"})) // seq 4
	rig := newBrokerRig(t)
	src := &swapSource{src: st}
	f := newTestFollower(t, src, rig.applier)
	mustSync(t, f)                                                                   // snapshot at next 5
	must[Cache](t)(st.CreateCache(Cache{TenantID: "t", Namespace: "n", Cache: "c"})) // seq 5
	mustSync(t, f)                                                                   // applied: last seq 5, next 6
	st.Close()

	restored := openTestStore(t, filepath.Dir(bak), StoreOptions{})
	for _, name := range []string{"y", "z", "v", "u"} { // seqs 3..6: same seqs, other changes
		must[Stream](t)(restored.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: name}))
	}
	src.set(restored)
	mustSync(t, f)
	for _, name := range []string{"y", "z", "v", "u"} {
		if rig.stream("t", "n", name) == nil {
			t.Fatalf("stream %s of the restored history was skipped", name)
		}
	}
	if st := f.Stats(); st.Resyncs != 1 {
		t.Fatalf("stats %+v, want 1 resync", st)
	}
}

// The overlap check costs nothing in the normal case: a follower that is
// caught up keeps following without resyncs, through control plane
// restarts, with any page size.
func TestFollowerOverlapNoSpuriousResync(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(filepath.Join(dir, FileName), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seedTN(t, st)
	rig := newBrokerRig(t)
	src := &swapSource{src: st}
	f, err := NewFollower(FollowerOptions{Source: src, Applier: rig.applier, Logger: quiet, PageLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, f)
	for round := range 3 {
		for i := range 3 {
			must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: string(rune('a'+round)) + string(rune('0'+i))}))
		}
		mustSync(t, f)
		st.Close() // restart
		if st, err = Open(filepath.Join(dir, FileName), StoreOptions{}); err != nil {
			t.Fatal(err)
		}
		src.set(st)
		mustSync(t, f)
	}
	t.Cleanup(func() { st.Close() })
	if s := f.Stats(); s.Resyncs != 0 || s.NextSeq != 12 || s.Kept != 0 {
		t.Fatalf("stats %+v", s)
	}
	if rig.stream("t", "n", "c2") == nil {
		t.Fatal("last stream not applied")
	}
}
