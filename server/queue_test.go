package server_test

import (
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// joinRaw authenticates s with the queue capability and joins group g of
// t1/default/jobs with prefetch 1.
func joinRaw(t *testing.T, s *rawStream, consumer string) {
	t.Helper()
	authQueue(t, s)
	s.r.AllowFlags(wire.FlagQueueDelivery)
	one := uint64(1)
	s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", Consumer: &consumer, Prefetch: &one})
	s.expectMsg(&wire.QueueJoined{Group: "g", Consumer: consumer, Prefetch: 1})
}

// authQueue authenticates s for tenant t1 with the queue capability.
func authQueue(t *testing.T, s *rawStream) {
	t.Helper()
	flags := wire.KnownFlags | wire.CapQueue
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: &flags})
	m := s.readMsg()
	if ok, _ := m.(*wire.AuthOK); ok == nil || ok.ServerFlags&wire.CapQueue == 0 {
		t.Fatalf("auth reply %#v", m)
	}
}

// An ack or nack without a request_id gets no answer (protocol §6.3: only
// requests with a request_id are answered), even when it names an offset
// not in flight: a queue_error without a request_id means the group closed
// and the consumer is over, so answering one would end a consumer that is
// fine.
func TestQueueUnrequestedAckGetsNoError(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 10 * time.Millisecond}}))
	s := dialRaw(t, tb).open()
	joinRaw(t, s, "w1")

	s.sendMsg(&wire.QueueAck{Offsets: []uint64{42}}) // never delivered, no request id
	s.sendMsg(&wire.QueueNack{Offset: 43})           // same, a nack
	id := uint64(7)
	s.sendMsg(&wire.QueueAck{Offsets: []uint64{44}, RequestID: &id}) // with a request id: answered
	m := s.readMsg()
	qe, ok := m.(*wire.QueueError)
	if !ok || qe.RequestID == nil || *qe.RequestID != id || qe.Code != "not_in_flight" {
		t.Fatalf("first reply %#v, want the not_in_flight answer to request %d and nothing for the unrequested ack and nack", m, id)
	}
}

// queue_stats needs the permission to consume from the stream, as joining
// does: without it the answer is a correlated "forbidden" (the stream goes
// on) and no consumer group is created by asking; with it, a group never
// joined is not_found (and still not created), and an existing group's
// counters come back.
func TestQueueStatsNeedsPermission(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	nobody := issue(t, sg, auth.Claims{Tenant: "b", Subject: "nobody", Perms: []string{"cache.read:cache:b/ns/c"}})
	consumer := issue(t, sg, auth.Claims{Tenant: "b", Subject: "worker", Perms: []string{"queue.consume:stream:b/ns/q"}})
	stats := func(s *rawStream, id uint64) wire.Message {
		t.Helper()
		s.sendMsg(&wire.QueueStats{TenantID: "b", Namespace: "ns", Stream: "q", Group: "g", RequestID: id})
		return s.readMsg()
	}

	s := c.open()
	if !s.authWith("b", nobody) {
		t.Fatal("token refused")
	}
	for id := uint64(1); id <= 2; id++ { // the stream goes on after a denial
		m := stats(s, id)
		if qe, ok := m.(*wire.QueueError); !ok || qe.RequestID == nil || *qe.RequestID != id || qe.Code != "forbidden" {
			t.Fatalf("queue_stats without permission answered %#v, want queue_error forbidden for request %d", m, id)
		}
	}
	if _, ok := tb.Server.GroupStats("b", "ns", "q", "g"); ok {
		t.Fatal("queue_stats by a token without permission created the consumer group")
	}

	s2 := c.open()
	if !s2.authWith("b", consumer) {
		t.Fatal("consumer token refused")
	}
	// Permitted, but no such group: not_found, and asking creates none.
	if qe, ok := stats(s2, 7).(*wire.QueueError); !ok || qe.Code != "not_found" || *qe.RequestID != 7 ||
		qe.Message != `no consumer group "g" on b/ns/q` {
		t.Fatalf("queue_stats of a group never joined answered %#v, want not_found", qe)
	}
	if _, ok := tb.Server.GroupStats("b", "ns", "q", "g"); ok {
		t.Fatal("queue_stats of a group never joined created it")
	}
	j := c.open()
	if !j.authWith("b", consumer) {
		t.Fatal("consumer token refused")
	}
	j.sendMsg(&wire.QueueJoin{TenantID: "b", Namespace: "ns", Stream: "q", Group: "g"})
	if m := j.readMsg(); m.Type() != "queue_joined" {
		t.Fatalf("join answered %#v", m)
	}
	if m := stats(s2, 8); m.Type() != "queue_stats_value" {
		t.Fatalf("queue_stats with queue.consume answered %#v", m)
	}
}
