package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A queue_join refused by its tenant's subscription limit leaves nothing
// behind, as a refused subscribe does: no consumer group (queue_stats
// answers not_found), no group state on disk, and no place taken under
// --queue-max-groups, so the group a later join names, once the tenant
// has room, is created.
func TestHunt13JoinRefusedByTenantLimitCreatesNoGroup(t *testing.T) {
	state := t.TempDir()
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{
			Limits: server.TenantLimits{MaxSubscriptions: 1},
			Queues: server.QueueOptions{StateDir: state, MaxGroupsPerStream: 2},
		}))
	c := dialRaw(t, tb)
	open := func() *rawStream {
		s := c.open()
		authQueue(t, s)
		return s
	}
	join := func(s *rawStream, group string) wire.Message {
		s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: group})
		return s.readMsg()
	}
	first := open()
	if m := join(first, "g1"); !isJoined(m) {
		t.Fatalf("first join: %#v", m)
	}
	// The tenant's one subscription is taken: the join of a new group is
	// refused...
	refused := open()
	if m := join(refused, "typo"); !isError(m, server.ErrTenantSubLimit.Error()) {
		t.Fatalf("join over the tenant's limit: %#v, want error %q", m, server.ErrTenantSubLimit)
	}
	refused.expectEnd()
	// ...and leaves no group.
	s := open()
	s.sendMsg(&wire.QueueStats{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "typo", RequestID: 1})
	if m := s.readMsg(); !isQueueError(m, "not_found") {
		t.Fatalf("queue_stats of the refused join's group: %#v, want queue_error not_found", m)
	}
	if _, ok := tb.Server.GroupStats("t1", "default", "jobs", "typo"); ok {
		t.Fatal("the refused join opened group typo")
	}
	if _, err := os.Stat(commitlog.DirFor(state, "t1", "default", "jobs", "typo")); err == nil {
		t.Fatalf("the refused join left group state in %s", filepath.Join(state, "t1"))
	}
	// Once the tenant has room, a second group fits under the limit of 2.
	first.s.Close()
	first.expectEnd()
	waitFor(t, "the first consumer gone", func() bool {
		st, ok := tb.Server.GroupStats("t1", "default", "jobs", "g1")
		return ok && st.Members == 0
	}, nil)
	if m := join(open(), "g2"); !isJoined(m) {
		t.Fatalf("join of a second group under a limit of 2: %#v", m)
	}
}

func isError(m wire.Message, msg string) bool {
	e, ok := m.(*wire.ErrorMessage)
	return ok && e.Message == msg
}

func isQueueError(m wire.Message, code string) bool {
	e, ok := m.(*wire.QueueError)
	return ok && e.Code == code
}

func isJoined(m wire.Message) bool {
	_, ok := m.(*wire.QueueJoined)
	return ok
}

// Under auto-create, a join the tenant's limit refuses creates no stream
// either, as a refused subscribe creates none.
func TestHunt13JoinRefusedByTenantLimitCreatesNoStream(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true}),
		testbroker.WithServerOptions(server.Options{Limits: server.TenantLimits{MaxSubscriptions: 1}}))
	c := dialRaw(t, tb)
	sub := c.open()
	sub.auth("t1", nil)
	sub.sendMsg(&wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "s"})
	if _, ok := sub.readMsg().(*wire.Subscribed); !ok {
		t.Fatal("subscribe refused")
	}
	s := c.open()
	authQueue(t, s)
	s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "new", Group: "g"})
	s.expectMsg(&wire.ErrorMessage{Message: server.ErrTenantSubLimit.Error()})
	s.expectEnd()
	if _, err := tb.Broker.LookupStream("t1", "default", "new"); err == nil {
		t.Fatal("the refused join created stream t1/default/new")
	}
}

// A join refused after the tenant's limit admitted it (unknown stream, a
// start beyond the stream's end, a bad group name, a consumer name taken)
// gives its place back: with two places and one consumer, a second
// consumer still joins after all of them.
func TestHunt13RefusedJoinsGiveTheirPlaceBack(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{Limits: server.TenantLimits{MaxSubscriptions: 2}}))
	c := dialRaw(t, tb)
	flags := wire.U16(wire.KnownFlags | wire.CapQueue | wire.CapManage)
	join := func(m *wire.QueueJoin) (*rawStream, wire.Message) {
		s := c.open()
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: flags})
		s.expectMsg(&wire.AuthOK{ServerFlags: *flags})
		m.TenantID, m.Namespace = "t1", "default"
		s.sendMsg(m)
		return s, s.readMsg()
	}
	w1, w2 := "w1", "w2"
	if _, m := join(&wire.QueueJoin{Stream: "jobs", Group: "g", Consumer: &w1}); !isJoined(m) {
		t.Fatalf("first join: %#v", m)
	}
	for name, m := range map[string]*wire.QueueJoin{
		"unknown stream":       {Stream: "nope", Group: "g"},
		"start beyond the end": {Stream: "jobs", Group: "g2", Start: &wire.StartPosition{Kind: wire.StartOffset, Offset: 99}},
		"bad group name":       {Stream: "jobs", Group: "a/b"},
		"consumer name taken":  {Stream: "jobs", Group: "g", Consumer: &w1},
	} {
		s, reply := join(m)
		if _, ok := reply.(*wire.ErrorMessage); !ok {
			t.Fatalf("%s: %#v, want an error", name, reply)
		}
		s.expectEnd()
	}
	if _, m := join(&wire.QueueJoin{Stream: "jobs", Group: "g", Consumer: &w2}); !isJoined(m) {
		t.Fatalf("second consumer after the refused joins: %#v", m)
	}
}
