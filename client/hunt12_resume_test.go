package client

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"
)

// A subscription that resumes (the broker restarted) at an offset a purge
// removed meanwhile goes on from the stream's oldest offset and counts
// the purged events it never got in Missed: every published event is
// delivered once, in order, or counted missed; it does not fail.
func TestHunt12ResumeAfterPurge(t *testing.T) {
	b := startQueueTestBroker(t)
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var got []uint64
	seen := make(chan uint64, 64)
	sub, err := c.SubscribeFunc(ctx, "default", "jobs", func(ev Event) error {
		mu.Lock()
		got = append(got, ev.Offset)
		mu.Unlock()
		seen <- ev.Offset
		if ev.Offset == 0 {
			<-release // the subscription reads nothing more meanwhile
		}
		return nil
	}, FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub := func(i uint64) {
		t.Helper()
		if err := c.Publish(ctx, "default", "jobs", binary.BigEndian.AppendUint64(nil, i)); err != nil {
			t.Fatal(err)
		}
	}
	pub(0)
	if off := <-seen; off != 0 {
		t.Fatalf("first event at %d", off)
	}
	for i := range uint64(4) {
		pub(1 + i)
	}
	if res, err := c.PurgeStream(ctx, "default", "jobs"); err != nil || res.Offset != 5 {
		t.Fatalf("purge %+v %v", res, err)
	}
	pub(5)
	b.Restart()
	close(release)
	publishAfterRestart(t, ctx, c, "jobs", binary.BigEndian.AppendUint64(nil, 6))
	for off := uint64(0); off != 6; {
		select {
		case off = <-seen:
		case <-ctx.Done():
			t.Fatalf("events %v, subscription err %v", got, sub.Err())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) || uint64(len(got))+sub.Missed() != 7 || sub.Err() != nil {
		t.Fatalf("delivered %v, missed %d, err %v; want 7 events delivered or missed, in order", got, sub.Missed(), sub.Err())
	}
	t.Logf("delivered %v, missed %d", got, sub.Missed())
}
