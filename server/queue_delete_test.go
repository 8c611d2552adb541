package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// nextDelivery reads one queue delivery frame of one delivery from s.
func nextDelivery(t *testing.T, s *rawStream) wire.QueueDelivery {
	t.Helper()
	f, err := s.r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Flags != wire.FlagQueueDelivery {
		m, _ := wire.DecodeMessage(f.Payload)
		t.Fatalf("got flags %#04x (%#v), want a delivery", f.Flags, m)
	}
	ds, err := wire.DecodeQueueDeliveries(f.Payload, nil)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	return ds[0]
}

// queue_delete ends the group's consumers with "queue group closed: group
// deleted", removes its durable state, and the name then starts a new
// group at the oldest record; deleting it again is not_found.
func TestQueueDeleteEndsConsumersAndForgetsState(t *testing.T) {
	stateDir := t.TempDir()
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 10 * time.Millisecond, StateDir: stateDir}}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(context.Background(), [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, tb)
	w := c.open()
	joinRaw(t, w, "w1")
	if d := nextDelivery(t, w); d.Offset != 0 || d.Attempt != 1 {
		t.Fatalf("first delivery %+v", d)
	}
	one := uint64(1)
	w.sendMsg(&wire.QueueAck{Offsets: []uint64{0}, RequestID: &one})
	// The ack frees the prefetch slot: the next delivery may come before
	// or after the ack's reply.
	for gotOK, gotNext := false, false; !gotOK || !gotNext; {
		f, err := w.r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Flags == wire.FlagQueueDelivery {
			ds, err := wire.DecodeQueueDeliveries(f.Payload, nil)
			if err != nil || len(ds) != 1 || ds[0].Offset != 1 || gotNext {
				t.Fatalf("second delivery %v, %v", ds, err)
			}
			gotNext = true
			continue
		}
		m, err := wire.DecodeMessage(f.Payload)
		if ok, isOK := m.(*wire.QueueOK); err != nil || !isOK || ok.RequestID != 1 || gotOK {
			t.Fatalf("after the ack: %#v, %v; want queue_ok for request 1", m, err)
		}
		gotOK = true
	}
	groupDir := commitlog.DirFor(stateDir, "t1", "default", "jobs", "g")
	if _, err := os.Stat(groupDir); err != nil {
		t.Fatalf("durable group state: %v", err)
	}

	admin := c.open()
	authQueue(t, admin)
	del := func(id uint64) {
		admin.sendMsg(&wire.QueueDelete{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", RequestID: id})
	}
	del(5)
	admin.expectMsg(&wire.QueueOK{RequestID: 5})
	w.expectMsg(&wire.QueueError{Message: "queue group closed: group deleted"})
	w.expectEnd()
	if _, err := os.Stat(groupDir); !os.IsNotExist(err) {
		t.Fatalf("group state still on disk: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(groupDir)); err != nil {
		t.Fatalf("the stream's group directory went too: %v", err)
	}
	del(6)
	admin.expectMsg(&wire.QueueError{RequestID: wire.U64(6), Code: "not_found", Message: `no consumer group "g" on t1/default/jobs`})

	// The name starts afresh: the acked record 0 comes again, at attempt 1.
	w2 := c.open()
	joinRaw(t, w2, "w2")
	if d := nextDelivery(t, w2); d.Offset != 0 || d.Attempt != 1 {
		t.Fatalf("first delivery of the new group %+v, want offset 0 attempt 1", d)
	}
}

// Deleting a group needs stream.manage: consuming from it is not enough.
func TestQueueDeleteNeedsManage(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	consumer := issue(t, sg, auth.Claims{Tenant: "b", Subject: "worker", Perms: []string{"queue.consume:stream:b/ns/q"}})
	manager := issue(t, sg, auth.Claims{Tenant: "b", Subject: "ops", Perms: []string{"stream.manage:stream:b/ns/q"}})
	flags := wire.KnownFlags | wire.CapQueue
	for _, tc := range []struct {
		token string
		want  wire.Message
	}{
		{consumer, &wire.QueueError{RequestID: wire.U64(1), Code: "forbidden", Message: "forbidden"}},
		{manager, &wire.QueueError{RequestID: wire.U64(1), Code: "not_found", Message: `no consumer group "g" on b/ns/q`}},
	} {
		s := c.open()
		s.sendMsg(&wire.Auth{TenantID: "b", Token: tc.token, ClientFlags: &flags})
		if _, err := s.r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		s.sendMsg(&wire.QueueDelete{TenantID: "b", Namespace: "ns", Stream: "q", Group: "g", RequestID: 1})
		s.expectMsg(tc.want)
	}
}
