package server_test

import (
	"context"
	"testing"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A consumer's prefetch bounds records, not bytes: with records near the
// frame limit, one batch of deliveries holds many frames' worth. The
// broker must still send frames within its frame limit (which a client
// reading with the same limit accepts: protocol §2) and, holding the
// batch in frames of that size, never builds one buffer of the whole
// batch. Every record arrives, once, in order.
func TestHunt14QueueDeliveriesFitTheFrameLimit(t *testing.T) {
	const maxFrame = 64 << 10
	const records = 12
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: maxFrame}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	for i := range records {
		p := make([]byte, maxFrame*3/4)
		p[0] = byte(i)
		if _, err := st.Publish(context.Background(), [][]byte{p}); err != nil {
			t.Fatal(err)
		}
	}
	s := dialRaw(t, tb).open()
	s.r = wire.NewReader(s.s, maxFrame) // the client's limit is the broker's
	authQueue(t, s)
	s.r.AllowFlags(wire.FlagQueueDelivery)
	name, prefetch := "c", uint64(64)
	s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", Consumer: &name, Prefetch: &prefetch})
	s.expectMsg(&wire.QueueJoined{Group: "g", Consumer: name, Prefetch: prefetch})
	var ds []wire.QueueDelivery
	next := uint64(0)
	for frames := 0; next < records; frames++ {
		if frames > records {
			t.Fatalf("%d frames, only %d records delivered", frames, next)
		}
		f, err := s.r.ReadFrame()
		if err != nil {
			t.Fatalf("read delivery frame after %d records: %v", next, err)
		}
		if f.Flags != wire.FlagQueueDelivery {
			t.Fatalf("frame flags %#x, want queue delivery", f.Flags)
		}
		if ds, err = wire.DecodeQueueDeliveries(f.Payload, ds); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Offset != next || d.Payload[0] != byte(next) {
				t.Fatalf("delivery offset %d (payload %d), want %d", d.Offset, d.Payload[0], next)
			}
			next++
		}
	}
}
