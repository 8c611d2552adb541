package main

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/controlplane"
	"github.com/felixmq/felix/internal/testwait"
)

// heldSeal is a commitlog OnSync hook that, once armed, holds the first
// fsync it sees until released: synced is closed when it holds one.
type heldSeal struct {
	armed            atomic.Bool
	synced, released chan struct{}
	once             sync.Once
}

func newHeldSeal(t *testing.T) *heldSeal {
	h := &heldSeal{synced: make(chan struct{}), released: make(chan struct{})}
	t.Cleanup(h.release)
	return h
}

func (h *heldSeal) onSync(time.Duration) {
	if h.armed.CompareAndSwap(true, false) {
		close(h.synced)
		<-h.released
	}
}

func (h *heldSeal) release() { h.once.Do(func() { close(h.released) }) }

// rollFlags are serve's flags for a durable stream whose segments hold 8
// records of 100 bytes, and whose only fsync is the seal of a segment.
func rollFlags(dir string) serveFlags {
	return serveFlags{dataDir: dir, segmentBytes: 1024, fsyncInterval: time.Hour}
}

// checkRollsInBackground publishes to st, a durable stream whose log
// fsyncs through h, past a segment while the seal's fsync is held: the
// publishes return (RollInBackground) and the segment grows past
// SegmentBytes; once released, the log rolls.
func checkRollsInBackground(t *testing.T, st *broker.Stream, h *heldSeal) {
	t.Helper()
	lg, ok := st.Log().(*commitlog.DiskLog)
	if !ok {
		t.Fatalf("the stream's log is a %T", st.Log())
	}
	p := bytes.Repeat([]byte{'x'}, 100) // 124 bytes a record: 8 fit a 1024-byte segment
	publish := func() {
		if _, err := st.Publish(context.Background(), [][]byte{p}); err != nil {
			t.Errorf("Publish: %v", err)
		}
	}
	for range 8 {
		publish()
	}
	if s := lg.Stats(); s.Segments != 1 {
		t.Fatalf("%d segments before the limit, want 1", s.Segments)
	}
	h.armed.Store(true)
	done := make(chan struct{})
	go func() { // past the limit, then 4 more while the seal's fsync is held
		defer close(done)
		for range 5 {
			publish()
		}
	}()
	testwait.Within(t, "the seal's fsync starting", h.synced)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.release()
		<-done
		t.Fatal("publishes past --segment-bytes waited for the fsync sealing the full segment (the log does not roll in the background)")
	}
	if s := lg.Stats(); s.Segments != 1 || s.Next != 13 || s.Bytes <= 1024 {
		t.Fatalf("stats %+v while the seal is held: want 13 records in 1 segment past 1024 bytes", s)
	}
	h.release()
	testwait.Eventually(t, "the background roll", func() bool { return lg.Stats().Segments == 2 })
}

// A durable stream of --durable-stream rolls its segments in the
// background (commitlog.Options.RollInBackground): the publish that
// fills a segment does not wait for the fsync sealing it. Before, it did
// (a latency spike once per segment), while the queue groups' state logs
// already rolled in the background.
func TestDurableStreamRollsInBackground(t *testing.T) {
	f := rollFlags(t.TempDir())
	f.durableStreams = []string{"t/ns/s"}
	h := newHeldSeal(t)
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close) // after h.release (cleanups run last first)
	if err := openDurableStreams(b, f, commitlog.SyncInterval, h.onSync, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stream("t", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	checkRollsInBackground(t, st, h)
}

// A durable stream the control plane creates rolls its segments in the
// background too: the applier's log options are streamLogOptions, as
// startControlPlane passes them.
func TestControlPlaneDurableStreamRollsInBackground(t *testing.T) {
	dir := t.TempDir()
	f := rollFlags(dir)
	h := newHeldSeal(t)
	b := broker.New(broker.Options{})
	t.Cleanup(b.Close)
	a, err := controlplane.NewBrokerApplier(controlplane.BrokerApplierOptions{Broker: b, DataDir: dir,
		Log: streamLogOptions(f, commitlog.SyncInterval, h.onSync, slog.New(slog.DiscardHandler)), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureTenant(controlplane.Tenant{TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureNamespace(controlplane.Namespace{TenantID: "t", Namespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureStream(controlplane.Stream{TenantID: "t", Namespace: "ns", Stream: "s", Durable: true, Fsync: "interval"}); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stream("t", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	checkRollsInBackground(t, st, h)
}
