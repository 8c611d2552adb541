package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// PublishBatch is one frame: a batch whose payloads add up past the frame
// limit (two of 8 MiB and a small one) is refused whole by the SDK with
// wire.ErrFrameTooLarge, nothing of it is published, and the publishes
// after it on the same client go through; the same payloads one at a
// time are all published.
func TestHunt19PublishBatchOverFrame(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/pb"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dial(t, tb, client.Options{})
	big := [][]byte{hunt19Payload(0, 8*mib), hunt19Payload(1, 8*mib), hunt19Payload(2, kib)}
	err := c.PublishBatch(ctx, "default", "pb", big)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("batch of 16 MiB + 1 KiB: %v, want wire.ErrFrameTooLarge", err)
	}
	want := &hunt19Want{}
	for _, p := range big {
		if err := c.Publish(ctx, "default", "pb", p); err != nil {
			t.Fatal(err)
		}
		want.add(p)
	}
	// Two of 8 MiB less a little fit one frame.
	pair := [][]byte{hunt19Payload(3, 8*mib-64), hunt19Payload(4, 8*mib-64)}
	if err := c.PublishBatch(ctx, "default", "pb", pair); err != nil {
		t.Fatalf("batch of 16 MiB - 128 B: %v", err)
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
// publish carries (each fits a frame alone; together they do not) must
// publish both: it may not pack them into one frame the SDK then refuses.
// Linger holds the first until the second is queued, so the two meet in
// one batch whatever the scheduling.
func TestHunt19PublisherSplitsBatchAtFrameLimit(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/pl"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := dial(t, tb, client.Options{})
	max := hunt19MaxEvent(t, "pl")
	for _, opts := range []client.PublisherOptions{
		{Linger: time.Minute},                     // default MaxBytes 64 KiB: the small one does not fill it
		{Linger: time.Minute, MaxBytes: 64 * mib}, // a MaxBytes above the frame limit
		{Linger: time.Minute, NoAck: true},
	} {
		p := c.Publisher("default", "pl", opts)
		if err := p.Publish(ctx, hunt19Payload(10, kib)); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, hunt19Payload(11, max)); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, hunt19Payload(12, 5*mib)); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Errorf("%+v: close: %v", opts, err)
		}
	}
	want := &hunt19Want{}
	for range 3 {
		want.add(hunt19Payload(10, kib))
		want.add(hunt19Payload(11, max))
		want.add(hunt19Payload(12, 5*mib))
	}
	sub, err := c.Subscribe(ctx, "default", "pl", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	hunt19Read(t, ctx, "subscriber", sub, want, 0, len(want.sums))
}
