package bench

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testwait"
)

// heldSeal is a commitlog OnSync hook that holds the first fsync it sees
// until released: synced is closed when it holds one.
type heldSeal struct {
	seen             atomic.Bool
	synced, released chan struct{}
	once             sync.Once
}

func newHeldSeal(t *testing.T) *heldSeal {
	h := &heldSeal{synced: make(chan struct{}), released: make(chan struct{})}
	t.Cleanup(h.release)
	return h
}

func (h *heldSeal) onSync(time.Duration) {
	if h.seen.CompareAndSwap(false, true) {
		close(h.synced)
		<-h.released
	}
}

func (h *heldSeal) release() { h.once.Do(func() { close(h.released) }) }

// The embedded queue broker (felix bench queue --broker embedded) opens
// its durable stream's log as felix serve does: a full segment is sealed
// in the background (commitlog.Options.RollInBackground), so the publish
// that fills it does not wait for the segment's fsync. Its log here is
// DurableStreamLogOptions' with 1 KiB segments (8 records of 100 bytes)
// and no fsync but the seal's, which is held: the publishes past the
// segment are acked while it is. Before, the embedded brokers opened
// their logs without RollInBackground and such a publish waited for the
// seal.
func TestEmbeddedQueueBrokerSealsSegmentsInBackground(t *testing.T) {
	h := newHeldSeal(t)
	bo := BenchBrokerOptions{StreamLog: func(sync commitlog.SyncPolicy) commitlog.Options {
		o := DurableStreamLogOptions(sync)
		o.SegmentBytes, o.SyncInterval, o.OnSync = 1024, time.Hour, h.onSync
		return o
	}}
	fb, err := StartEmbeddedQueueFelixWith(commitlog.SyncInterval, bo, QueueBenchStream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.release()
		if err := fb.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.Liveness)
	defer cancel()
	c, err := client.Dial(ctx, fb.Addr, client.Options{TLS: fb.TLS, Reconnect: client.ReconnectPolicy{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() { // 10 records of 124 bytes: past one segment, within two
		defer close(done)
		for range 10 {
			if err := c.Publish(ctx, "default", "queuebench", bytes.Repeat([]byte{'x'}, 100)); err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
		}
	}()
	testwait.Within(t, "the seal's fsync starting", h.synced)
	select {
	case <-done:
	case <-time.After(testwait.Liveness):
		t.Fatalf("the publishes past the segment waited for its seal's fsync (not sealed in the background)")
	}
}

// DurableStreamLogOptions are felix serve's at its default flags: the
// segment sealed in the background, the sync policy asked for, commitlog's
// default segment size and fsync period (serve's --segment-bytes and
// --fsync-interval defaults), no retention.
func TestDurableStreamLogOptions(t *testing.T) {
	for _, p := range []commitlog.SyncPolicy{commitlog.SyncInterval, commitlog.SyncAlways, commitlog.SyncNever} {
		o := DurableStreamLogOptions(p)
		if !o.RollInBackground || o.Sync != p || o.SegmentBytes != 0 || o.SyncInterval != 0 || o.RetentionBytes != 0 || o.RetentionAge != 0 || o.Logger == nil {
			t.Errorf("DurableStreamLogOptions(%v) = %+v", p, o)
		}
	}
}

// Every durable stream of the embedded queue and soak brokers is opened
// with BenchBrokerOptions.StreamLog's options, under the sync policy of
// the benchmark.
func TestEmbeddedBrokersOpenStreamLogsWithStreamLog(t *testing.T) {
	var mu sync.Mutex
	var asked []commitlog.SyncPolicy
	bo := BenchBrokerOptions{StreamLog: func(p commitlog.SyncPolicy) commitlog.Options {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, p)
		return DurableStreamLogOptions(p)
	}}
	fb, err := StartEmbeddedQueueFelixWith(commitlog.SyncAlways, bo, QueueBenchStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := fb.Stop(); err != nil {
		t.Error(err)
	}
	st, err := StartEmbeddedSoakFelixWith(DefaultSoakCacheBytes, 0, bo)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Stop(); err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []commitlog.SyncPolicy{commitlog.SyncAlways, commitlog.SyncInterval, commitlog.SyncInterval}; !slices.Equal(asked, want) {
		t.Errorf("StreamLog asked for %v, want %v (the queue broker's stream, the soak broker's two)", asked, want)
	}
}
