package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// QueueOptions.MaxInFlightBytes reaches the groups: with room for two
// 40-byte records, a consumer whose prefetch allows 64 gets offsets 0 and
// 1 first, and offset 2 only once it acked one of them.
func TestQueueMaxInFlightBytesOption(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{MaxInFlightBytes: 100}}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 5)
	for i := range recs {
		recs[i] = make([]byte, 40)
	}
	if _, err := st.Publish(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	s := dialRaw(t, tb).open()
	authQueue(t, s)
	s.r.AllowFlags(wire.FlagQueueDelivery)
	name, prefetch := "c", uint64(64)
	s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", Consumer: &name, Prefetch: &prefetch})
	s.expectMsg(&wire.QueueJoined{Group: "g", Consumer: name, Prefetch: prefetch})
	offsets := func() []uint64 {
		t.Helper()
		for {
			f, err := s.r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Flags != wire.FlagQueueDelivery {
				continue // the ack's reply
			}
			ds, err := wire.DecodeQueueDeliveries(f.Payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			var out []uint64
			for _, d := range ds {
				out = append(out, d.Offset)
			}
			return out
		}
	}
	if got := offsets(); !slices.Equal(got, []uint64{0, 1}) {
		t.Fatalf("first deliveries %v, want [0 1]: 100 bytes hold two 40-byte records", got)
	}
	s.sendMsg(&wire.QueueAck{Offsets: []uint64{0}})
	if got := offsets(); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("after acking 0: deliveries %v, want [2]", got)
	}
}
