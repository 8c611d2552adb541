package client

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
)

// A subscription from the earliest offset of a durable stream, stalled
// in its handler while retention deletes what it has not read (applied
// when the restarted broker opens the log), resumes from the oldest
// retained offset: every published event is delivered once, in order,
// or counted in Missed, and Missed counts exactly the ones skipped.
func TestHunt13MissedAfterRestartWithRetention(t *testing.T) {
	b := startBroker(t, testbroker.WithDurableStreams(t.TempDir(),
		commitlog.Options{Sync: commitlog.SyncNever, SegmentBytes: 8 << 10, RetentionBytes: 32 << 10, RetentionInterval: time.Hour},
		"default/default/jobs"))
	// A small stream window: the broker cannot write far ahead of the
	// stalled handler.
	c := dial(t, b, Options{Reconnect: fastReconnect,
		Transport: transport.Options{InitialStreamReceiveWindow: 16 << 10, MaxStreamReceiveWindow: 16 << 10}})
	ctx := testCtx(t)
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	var mu sync.Mutex
	var got []uint64
	seen := make(chan uint64, 1024)
	sub, err := c.SubscribeFunc(ctx, "default", "jobs", func(ev Event) error {
		mu.Lock()
		got = append(got, ev.Offset)
		mu.Unlock()
		seen <- ev.Offset
		if ev.Offset == 0 {
			<-release
		}
		return nil
	}, FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	defer unblock() // before Close, which waits for the handler
	const n = 200
	pad := make([]byte, 1<<10)
	for i := range uint64(n) {
		if err := c.Publish(ctx, "default", "jobs", append(binary.BigEndian.AppendUint64(nil, i), pad...)); err != nil {
			t.Fatal(err)
		}
	}
	if off := <-seen; off != 0 {
		t.Fatalf("first event at %d", off)
	}
	// The subscription's connection goes (its handler still stalled, so
	// the broker's writer is not held up by it), then the broker restarts:
	// retention runs as the log opens.
	for _, s := range c.eventSlots {
		if sc := s.current(); sc != nil {
			_ = sc.conn.CloseWithError(0, "test")
		}
	}
	b.Restart()
	unblock()
	publishAfterRestart(t, ctx, c, "jobs", binary.BigEndian.AppendUint64(nil, n))
	for off := uint64(0); off != n; {
		select {
		case off = <-seen:
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("events %v, subscription err %v", got, sub.Err())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("delivered %v: not in order or repeated", got)
	}
	var gaps uint64
	for i := 1; i < len(got); i++ {
		gaps += got[i] - got[i-1] - 1
	}
	if uint64(len(got))+sub.Missed() != n+1 || sub.Missed() != gaps || sub.Missed() == 0 || sub.Err() != nil {
		t.Fatalf("delivered %d events (%v), missed %d (gaps %d), err %v; want %d delivered or missed, some missed",
			len(got), got, sub.Missed(), gaps, sub.Err(), n+1)
	}
	t.Logf("delivered %d, missed %d", len(got), sub.Missed())
}
