package queue

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// A durable group's state log cut at every byte of its active segment
// that keeps what was fsynced before the last truncation (a crash image
// under a sync policy that lost the log's tail: the state records after
// the cut never reached the disk; the segments before it were fsynced
// when sealed, the older ones deleted once the snapshot that replaces
// them was fsynced): the group always opens, the
// acks whose records survive stay done, every other record comes back,
// with its attempt count when the record carrying it survives, and Lag
// says exactly that.
func TestHunt13TornStateLogTail(t *testing.T) {
	const n = 60
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stateOpts := commitlog.Options{Sync: commitlog.SyncAlways, SegmentBytes: 1024, Logger: quiet, RetentionInterval: -1}
	stream, err := commitlog.Open(filepath.Join(dir, "stream"), commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	fill(t, stream, n)
	stateDir := filepath.Join(dir, "state")
	state, err := commitlog.Open(stateDir, stateOpts)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Clock: newFakeClock(), AckTimeout: time.Hour, SnapshotEvery: 4, StateLog: state}
	g := newGroupT(t, stream, opts)
	m := joinT(t, g, "a", n)
	if got := nextT(t, m, 0); len(got) != n {
		t.Fatalf("delivered %d", len(got))
	}
	// ackAt[i]: the state-log offset of the record acking i (one per Ack).
	ackAt := map[uint64]uint64{}
	// durable: every state record below it was fsynced before a segment
	// was deleted (TruncateBefore syncs the snapshot it keeps first), so
	// no crash image loses them.
	var durable uint64
	var last uint64 // the last offset acked
	for i := range uint64(n) {
		if i%3 == 2 {
			continue // stays in flight: pending after the crash
		}
		if durable > 0 && state.Next() >= durable+8 {
			break // the rest stay in flight
		}
		ackAt[i] = state.Next()
		oldest := state.Oldest()
		ackT(t, m, i)
		if state.Oldest() != oldest {
			durable = g.state.ref + 1
		}
		last = i
	}
	firstAck := ackAt[0] // it also carries the deliveries' counts
	state.Close()        // the crash: g is abandoned
	if state.Oldest() == 0 {
		t.Fatalf("the state log was never truncated")
	}

	var logs []string
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			logs = append(logs, e.Name())
		}
	}
	slices.Sort(logs)
	active := logs[len(logs)-1]
	image, err := os.ReadFile(filepath.Join(stateDir, active))
	if err != nil {
		t.Fatal(err)
	}
	tested, lostAcks := 0, 0
	for cut := range len(image) + 1 {
		if cut%3 != 0 && cut != len(image) {
			continue // every third byte keeps the test short
		}
		cutDir := t.TempDir()
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(stateDir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == active {
				b = b[:cut]
			}
			if err := os.WriteFile(filepath.Join(cutDir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sl, err := commitlog.Open(cutDir, stateOpts)
		if err != nil {
			t.Fatalf("cut at %d of %s: open: %v", cut, active, err)
		}
		kept := sl.Next()
		if kept < durable {
			sl.Close() // not a crash image: those records were fsynced
			continue
		}
		var want []uint64 // not done: redelivered
		for i := range uint64(n) {
			if at, acked := ackAt[i]; !acked || at >= kept {
				want = append(want, i)
			}
		}
		tested++
		if kept <= ackAt[last] {
			lostAcks++
		}
		o := opts
		o.StateLog = sl
		g, err := NewGroup("g", stream, o)
		if err != nil {
			t.Fatalf("cut at %d (state records to %d): NewGroup: %v", cut, kept, err)
		}
		if s := g.Stats(); s.Lag != uint64(len(want)) {
			t.Fatalf("cut at %d (state records to %d): lag %d, want %d; %+v", cut, kept, s.Lag, len(want), s)
		}
		ds := nextT(t, joinT(t, g, "b", n), 0)
		if !slices.Equal(offsets(ds), want) {
			t.Fatalf("cut at %d (state records to %d): redelivered %v, want %v", cut, kept, offsets(ds), want)
		}
		wantAttempt := 1
		if firstAck < kept {
			wantAttempt = 2
		}
		for _, d := range ds {
			if d.Attempt != wantAttempt {
				t.Fatalf("cut at %d (state records to %d): %d redelivered as attempt %d, want %d", cut, kept, d.Offset, d.Attempt, wantAttempt)
			}
		}
		g.Close()
		sl.Close()
	}
	if tested < 20 || lostAcks == 0 {
		t.Fatalf("%d cuts of %d bytes tested, %d losing acks: the test wants more", tested, len(image), lostAcks)
	}
	t.Logf("%d cuts of %d bytes, %d losing acks", tested, len(image), lostAcks)
}
