package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// PublishBatch is one frame: a batch whose payloads add up past the frame
// limit (hunt19Frame: two of half of it and a small one) is refused whole
// by the SDK with wire.ErrFrameTooLarge, nothing of it is published, and
// the publishes after it on the same client go through; the same payloads
// one at a time are all published.
func TestHunt19PublishBatchOverFrame(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/pb"),
		hunt19Server(hunt19Frame))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := hunt19Dial(t, tb, hunt19Frame, client.Options{})
	const half = hunt19Frame / 2
	big := [][]byte{hunt19Payload(0, half), hunt19Payload(1, half), hunt19Payload(2, kib)}
	err := c.PublishBatch(ctx, "default", "pb", big)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("batch of the frame limit + 1 KiB: %v, want wire.ErrFrameTooLarge", err)
	}
	want := &hunt19Want{}
	for _, p := range big {
		if err := c.Publish(ctx, "default", "pb", p); err != nil {
			t.Fatal(err)
		}
		want.add(p)
	}
	// Two of half the limit less a little fit one frame.
	pair := [][]byte{hunt19Payload(3, half-64), hunt19Payload(4, half-64)}
	if err := c.PublishBatch(ctx, "default", "pb", pair); err != nil {
		t.Fatalf("batch of the frame limit - 128 B: %v", err)
	}
	want.add(pair[0])
	want.add(pair[1])
	sub, err := c.Subscribe(ctx, "default", "pb", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	hunt19Read(t, ctx, "subscriber", sub, want, 0, len(want.sums))
	if st, _ := tb.Broker.LookupStream("default", "default", "pb"); st.Stats().Tail != uint64(len(want.sums)) {
		t.Errorf("stream holds %d events, want %d: the refused batch was partly published?", st.Stats().Tail, len(want.sums))
	}
}

// A batching Publisher given a small event then one of the largest size a
// publish carries (each fits a frame alone; together they do not), then
// a smaller large one, must publish all three: it may not pack them into
// one frame the SDK then refuses. Linger holds the first until the second
// is queued, so the two meet in one batch whatever the scheduling. Broker
// and client run at the frame limit hunt19Frame under three publisher
// settings, then once at the defaults (16 MiB frames; the small event and
// the largest only), where the largest event the default SDK sends must
// also be one the default broker takes.
func TestHunt19PublisherSplitsBatchAtFrameLimit(t *testing.T) {
	t.Run("small-frames", func(t *testing.T) {
		tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/pl"),
			hunt19Server(hunt19Frame))
		max := hunt19MaxEvent(t, hunt19Frame, "pl")
		hunt19PublisherSplits(t, hunt19Dial(t, tb, hunt19Frame, client.Options{}), []int{kib, max, hunt19Frame / 3}, []client.PublisherOptions{
			{Linger: time.Minute},                     // default MaxBytes 64 KiB: the small one does not fill it
			{Linger: time.Minute, MaxBytes: 64 * mib}, // a MaxBytes above the frame limit
			{Linger: time.Minute, NoAck: true},
		})
	})
	t.Run("defaults", func(t *testing.T) {
		tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/pl"))
		max := hunt19MaxEvent(t, wire.DefaultMaxFrameBytes, "pl")
		hunt19PublisherSplits(t, dial(t, tb, client.Options{}), []int{kib, max}, []client.PublisherOptions{{Linger: time.Minute}})
	})
}

// hunt19PublisherSplits publishes through c, with a Publisher of each of
// opts in turn, events of sizes to default/default/pl, then reads them
// all back in order, byte-exact.
func hunt19PublisherSplits(t *testing.T, c *client.Client, sizes []int, opts []client.PublisherOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range opts {
		p := c.Publisher("default", "pl", o)
		for i, size := range sizes {
			if err := p.Publish(ctx, hunt19Payload(uint64(10+i), size)); err != nil {
				t.Fatalf("%+v: publish of %d bytes: %v", o, size, err)
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatalf("%+v: close: %v", o, err) // events not published: nothing to read back
		}
	}
	want := &hunt19Want{}
	for range opts {
		for i, size := range sizes {
			want.add(hunt19Payload(uint64(10+i), size))
		}
	}
	sub, err := c.Subscribe(ctx, "default", "pl", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	hunt19Read(t, ctx, fmt.Sprintf("subscriber (largest event %d bytes)", sizes[1]), sub, want, 0, len(want.sums))
}
