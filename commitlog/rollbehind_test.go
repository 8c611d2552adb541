package commitlog

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heldSync is an Options.OnSync that, once armed, holds the first fsync
// of records it sees until released: synced is closed when it holds one.
type heldSync struct {
	armed            atomic.Bool
	synced, released chan struct{}
	once             sync.Once
}

func newHeldSync() *heldSync {
	return &heldSync{synced: make(chan struct{}), released: make(chan struct{})}
}

func (h *heldSync) onSync(time.Duration) {
	if h.armed.CompareAndSwap(true, false) {
		close(h.synced)
		<-h.released
	}
}

func (h *heldSync) release() { h.once.Do(func() { close(h.released) }) }

// Under RollInBackground, the append that takes the active segment past
// SegmentBytes, and the appends after it, do not wait for the fsync that
// seals the segment: they are written into it while a goroutine fsyncs
// it, then rolls. Without it, that append rolls first, and waits for the
// fsync of the whole segment (its own, before it takes the write lock).
// Either way the segment is complete on disk before the next one exists,
// and the log opens again with every record.
func TestRollInBackgroundAppendsDoNotWaitForSeal(t *testing.T) {
	dir := t.TempDir()
	h := newHeldSync()
	opts := testOptions()
	opts.Sync, opts.SyncInterval = SyncInterval, time.Hour // no fsync but the seal's
	opts.OnSync = h.onSync
	opts.RollInBackground = true
	l := openT(t, dir, opts)
	t.Cleanup(h.release)                // before the log's Close
	p := bytes.Repeat([]byte{'x'}, 100) // 124 bytes a record: 8 fit a 1024-byte segment
	appendOne := func() {
		if _, err := l.Append(context.Background(), [][]byte{p}); err != nil {
			t.Errorf("Append: %v", err)
		}
	}
	for range 8 {
		appendOne()
	}
	if s := l.Stats(); s.Segments != 1 {
		t.Fatalf("%d segments before the limit, want 1", s.Segments)
	}
	h.armed.Store(true)
	done := make(chan struct{})
	go func() { // past the limit, then 4 more while the seal's fsync is held
		defer close(done)
		for range 5 {
			appendOne()
		}
	}()
	within(t, "the seal's fsync starting", h.synced)
	within(t, "appends past SegmentBytes returning while the seal's fsync is held", done)
	if s := l.Stats(); s.Segments != 1 || s.Next != 13 {
		t.Fatalf("stats %+v while the seal is held: want 13 records in 1 segment", s)
	}
	h.release()
	eventually(t, "the background roll", func() bool { return l.Stats().Segments == 2 })
	appendOne() // into the new segment
	if got := segments(t, dir); len(got) != 2 || got[1] != 13 {
		t.Fatalf("segments %v, want [0 13]", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	if got := readAll(t, l, 0); len(got) != 14 {
		t.Fatalf("reopened with %d records, want 14", len(got))
	}
}

// Under RollInBackground an append that would take the active segment
// past twice SegmentBytes rolls itself (the background roll is held),
// and a batch larger than a segment gets one of its own, as without it.
func TestRollInBackgroundBoundsTheSegment(t *testing.T) {
	dir := t.TempDir()
	h := newHeldSync()
	opts := testOptions()
	opts.Sync, opts.SyncInterval = SyncInterval, time.Hour
	opts.OnSync = h.onSync
	opts.RollInBackground = true
	l := openT(t, dir, opts)
	t.Cleanup(h.release) // before the log's Close
	p := bytes.Repeat([]byte{'x'}, 100)
	for range 8 {
		if _, err := l.Append(context.Background(), [][]byte{p}); err != nil {
			t.Fatal(err)
		}
	}
	h.armed.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 9 { // 17 records: 2108 bytes, past 2048
			if _, err := l.Append(context.Background(), [][]byte{p}); err != nil {
				t.Errorf("Append: %v", err)
			}
		}
	}()
	within(t, "the seal's fsync starting", h.synced)
	eventually(t, "16 records written", func() bool { return l.Next() >= 16 })
	select {
	case <-done:
		t.Fatal("the append past twice SegmentBytes returned while the segment's fsync was held")
	default:
	}
	h.release()
	within(t, "appends", done)
	eventually(t, "the roll", func() bool { return l.Stats().Segments == 2 })
	if got := segments(t, dir); got[1] != 16 {
		t.Fatalf("segments %v, want the second at 16", got)
	}
	big := bytes.Repeat([]byte{'y'}, 2000)
	if _, err := l.Append(context.Background(), [][]byte{big}); err != nil {
		t.Fatal(err)
	}
	// (The background then rolls it too: it is past SegmentBytes.)
	eventually(t, "the big record's own segment", func() bool { return slices.Contains(segments(t, dir), 17) })
}
