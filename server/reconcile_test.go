package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/queue"
)

// groupWithState runs group name on stream (logged in streamDir, n
// records) the way the server keeps it, with its state in
// stateDir/<stream>/<name>, delivering and acking the first acked records.
func groupWithState(t *testing.T, stateDir string, k broker.StreamKey, stream commitlog.Log, name string, acked int) {
	t.Helper()
	sl, err := commitlog.Open(commitlog.DirFor(stateDir, k.Tenant, k.Namespace, k.Stream, name), commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	g, err := queue.NewGroup(name, stream, queue.Options{StateLog: sl})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m, err := g.Join("m", acked)
	if err != nil {
		t.Fatal(err)
	}
	if acked == 0 {
		return
	}
	ds, err := m.Next(context.Background(), acked)
	if err != nil || len(ds) != acked {
		t.Fatalf("group %s: %d deliveries, %v; want %d", name, len(ds), err, acked)
	}
	offs := make([]uint64, len(ds))
	for i, d := range ds {
		offs[i] = d.Offset
	}
	if err := m.Ack(context.Background(), offs...); err != nil {
		t.Fatal(err)
	}
}

var quiet = slog.New(slog.DiscardHandler)

func openLog(t *testing.T, dir string, records int) *commitlog.DiskLog {
	t.Helper()
	lg, err := commitlog.Open(dir, commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	for i := range records {
		if _, err := lg.Append(context.Background(), [][]byte{fmt.Appendf(nil, "r%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return lg
}

// Every group of the stream whose state goes beyond the log's end is
// clamped, with a warning naming it; the others, and the groups of other
// streams, are not written to; a corrupt state is left with a warning;
// no state log is left open.
func TestReconcileGroupStates(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "groups")
	k := broker.StreamKey{Tenant: "t", Namespace: "n", Stream: "s"}
	other := broker.StreamKey{Tenant: "t", Namespace: "n", Stream: "other"}
	stream := openLog(t, filepath.Join(dir, "s"), 10)
	groupWithState(t, stateDir, k, stream, "far", 8)
	groupWithState(t, stateDir, k, stream, "near", 3)
	groupWithState(t, stateDir, k, stream, "idle", 0)
	groupWithState(t, stateDir, other, stream, "far", 8)
	corrupt := commitlog.DirFor(stateDir, k.Tenant, k.Namespace, k.Stream, "bad")
	bad := openLog(t, corrupt, 0)
	if _, err := bad.Append(context.Background(), [][]byte{{9, 9}}); err != nil {
		t.Fatal(err)
	}
	bad.Close()
	if err := os.WriteFile(filepath.Join(filepath.Dir(corrupt), "stray-file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sizes := func(k broker.StreamKey, name string) uint64 {
		sl, err := commitlog.Open(commitlog.DirFor(stateDir, k.Tenant, k.Namespace, k.Stream, name), commitlog.Options{Logger: quiet})
		if err != nil {
			t.Fatalf("state of %s on %s: %v (left open?)", name, k, err)
		}
		defer sl.Close()
		return sl.Next()
	}
	near, otherFar := sizes(k, "near"), sizes(other, "far")

	older := openLog(t, filepath.Join(dir, "older"), 5) // s's log, gone back to 5 records
	logs := &syncbuf.Buffer{}
	if err := ReconcileGroupStates(stateDir, k, older, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0]+lines[1], "group=far cursor=8 end=5") ||
		!strings.Contains(lines[0]+lines[1], "queue group state unreadable") {
		t.Fatalf("want a clamp warning for far (cursor 8, end 5) and one for the corrupt state, got:\n%s", logs)
	}
	if sizes(k, "near") != near || sizes(other, "far") != otherFar {
		t.Errorf("a state within the end, or another stream's, was written to")
	}
	for _, c := range []struct {
		name        string
		want, acked uint64
	}{{"far", 5, 5}, {"near", 5, 3}, {"idle", 5, 0}} {
		sl, err := commitlog.Open(commitlog.DirFor(stateDir, k.Tenant, k.Namespace, k.Stream, c.name), commitlog.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		g, err := queue.NewGroup(c.name, older, queue.Options{StateLog: sl})
		if err != nil {
			t.Fatal(err)
		}
		if s := g.Stats(); s.Lag != c.want-c.acked || s.Cursor != c.acked {
			t.Errorf("group %s after the clamp: lag %d cursor %d, want lag %d cursor %d", c.name, s.Lag, s.Cursor, c.want-c.acked, c.acked)
		}
		g.Close()
		sl.Close()
	}
}

// Streams without groups (the common case, by the thousand at start) and
// a server without durable group state cost no directory listing.
func TestReconcileGroupStatesWithoutGroups(t *testing.T) {
	dir := t.TempDir()
	lg := openLog(t, filepath.Join(dir, "s"), 1)
	k := broker.StreamKey{Tenant: "t", Namespace: "n", Stream: "s"}
	for _, stateDir := range []string{"", filepath.Join(dir, "none"), dir} {
		if err := ReconcileGroupStates(stateDir, k, lg, nil); err != nil {
			t.Errorf("state dir %q: %v", stateDir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("the state dir was created: %v", err)
	}
}

// BenchmarkReconcileGroupStatesNoGroups is the start cost per durable
// stream without groups.
func BenchmarkReconcileGroupStatesNoGroups(b *testing.B) {
	dir := b.TempDir()
	lg, err := commitlog.Open(filepath.Join(dir, "s"), commitlog.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer lg.Close()
	for i := 0; b.Loop(); i++ {
		k := broker.StreamKey{Tenant: "t", Namespace: "n", Stream: fmt.Sprint("s", i)}
		if err := ReconcileGroupStates(dir, k, lg, nil); err != nil {
			b.Fatal(err)
		}
	}
}
