package broker

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/queue"
	"github.com/felixmq/felix/wire"
)

// hunt13Node is a broker whose durable stream "t/ns/s" and one consumer
// group's state live in dir, as the server keeps them: it can stop
// cleanly, "crash" (the group abandoned), and start again from the files.
type hunt13Node struct {
	t      *testing.T
	dir    string
	b      *Broker
	st     *Stream
	state  *commitlog.DiskLog
	g      *queue.Group
	member *queue.Member
}

func startHunt13Node(t *testing.T, dir string, clock *testclock.Clock) *hunt13Node {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lg, err := commitlog.Open(filepath.Join(dir, "stream"), commitlog.Options{SegmentBytes: 512, Logger: quiet, RetentionInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	state, err := commitlog.Open(filepath.Join(dir, "state"), commitlog.Options{Sync: commitlog.SyncAlways, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// The group's state agrees with the stream's log before anything is
	// appended to it (server.ReconcileGroupStates).
	if _, err := queue.ClampState(state, lg.Next()); err != nil {
		t.Fatal(err)
	}
	b := New(Options{})
	st, err := b.DeclareLoggedStream("t", "ns", "s", StreamOptions{Log: lg, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	n := &hunt13Node{t: t, dir: dir, b: b, st: st, state: state}
	t.Cleanup(n.stop)
	n.g, err = queue.NewGroup("g", lg, queue.Options{Clock: clock, StateLog: state, AckTimeout: time.Minute, SnapshotEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n.member, err = n.g.Join("m", 100); err != nil {
		t.Fatal(err)
	}
	return n
}

// stop closes the broker (and with it the stream's log) and the state
// log; the group is closed first only by a clean stop.
func (n *hunt13Node) stop() {
	n.b.Close()
	n.state.Close()
}

func (n *hunt13Node) publish(k int) {
	n.t.Helper()
	for range k {
		if _, err := n.st.Publish(context.Background(), [][]byte{seqPayload(n.st.Tail())}); err != nil {
			n.t.Fatal(err)
		}
	}
}

func (n *hunt13Node) take() []uint64 {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := n.member.Next(ctx, 0)
	if err != nil {
		n.t.Fatal(err)
	}
	offs := make([]uint64, len(ds))
	for i, d := range ds {
		offs[i] = d.Offset
	}
	return offs
}

// A durable stream purged while its consumer group holds records, then
// the broker restarted (a crash and a clean stop), then the stream deleted
// and made again under the same name while the group's state is still on
// disk: offsets are never reused while the stream lives, the purged
// records are never delivered again (counted lost), acked ones neither,
// the group's Lag is exact after each restart, and the stream made again
// is consumed from its first record.
func TestHunt13PurgedDurableStreamGroupAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	clock := testclock.New()
	n := startHunt13Node(t, dir, clock)
	n.publish(30)
	if got := n.take(); len(got) != 30 {
		t.Fatalf("delivered %v", got)
	}
	if err := n.member.Ack(context.Background(), 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	r, err := n.st.Purge()
	if err != nil || r.Purged != 30 || r.Offset != 30 {
		t.Fatalf("purge %+v %v", r, err)
	}
	if err := n.member.Ack(context.Background(), 3); err != nil { // in flight: may be acked
		t.Fatal(err)
	}
	n.publish(5) // 30..34
	n.stop()     // a crash: the group is not closed

	n = startHunt13Node(t, dir, clock)
	if s := n.g.Stats(); s.Lag != 5 || s.Pending != 0 || s.Lost != 26 {
		t.Fatalf("after the crash: %+v", s)
	}
	if tail := n.st.Tail(); tail != 35 {
		t.Fatalf("tail %d after the restart, want 35", tail)
	}
	if got := n.take(); !slices.Equal(got, []uint64{30, 31, 32, 33, 34}) {
		t.Fatalf("after the crash the group delivered %v", got)
	}
	if err := n.member.Ack(context.Background(), 30, 31); err != nil {
		t.Fatal(err)
	}
	if r, err := n.st.Purge(); err != nil || r.Purged != 5 || r.Offset != 35 {
		t.Fatalf("second purge %+v %v", r, err)
	}
	if err := n.g.Close(); err != nil {
		t.Fatal(err)
	}
	n.stop()

	n = startHunt13Node(t, dir, clock)
	if s := n.g.Stats(); s.Lag != 0 || s.Pending != 0 || s.Lost != 3 || s.Floor != 35 {
		t.Fatalf("after a clean restart: %+v", s)
	}
	n.publish(1)
	if got := n.take(); !slices.Equal(got, []uint64{35}) {
		t.Fatalf("after the clean restart the group delivered %v", got)
	}
	sub, err := n.st.Subscribe(SubscribeOptions{WantOffsets: true, Start: wire.StartPosition{Kind: wire.StartEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readOffsets(t, sub, 36); !slices.Equal(got, []uint64{35}) {
		t.Fatalf("earliest subscription got %v", got)
	}
	sub.Close()

	// The stream is deleted; a crash leaves the group's state behind.
	if err := n.b.DeleteStream("t", "ns", "s"); err != nil {
		t.Fatal(err)
	}
	n.stop()
	if err := os.RemoveAll(filepath.Join(dir, "stream")); err != nil {
		t.Fatal(err)
	}
	n = startHunt13Node(t, dir, clock)
	if s := n.g.Stats(); s.Lag != 0 || s.Cursor != 0 || s.Floor != 0 {
		t.Fatalf("the stream made again: %+v", s)
	}
	n.publish(3)
	if got := n.take(); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("the stream made again: the group delivered %v", got)
	}
}
