package server_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// authPurge authenticates s offering the management extension only.
func (s *rawStream) authPurge(tenant string) {
	s.t.Helper()
	s.sendMsg(&wire.Auth{TenantID: tenant, Token: "x", ClientFlags: wire.U16(wire.KnownFlags | wire.CapManage)})
	s.expectJSON(`{"type":"auth_ok","server_flags":` + strconv.Itoa(int(wire.KnownFlags|wire.CapManage)) + `}`)
}

// askWith sends m on a new stream authenticated for tenant a with a
// token granting perms (and the management extension) and returns the
// reply.
func (c *rawConn) askWith(sg *auth.Signer, perms []string, m wire.Message) wire.Message {
	t := c.t
	t.Helper()
	s := c.open()
	tok, err := sg.Issue(auth.Claims{Subject: "u", Tenant: "a", Perms: perms})
	if err != nil {
		t.Fatal(err)
	}
	s.sendMsg(&wire.Auth{TenantID: "a", Token: tok, ClientFlags: wire.U16(wire.KnownFlags | wire.CapManage)})
	if _, ok := s.readMsg().(*wire.AuthOK); !ok {
		t.Fatal("auth refused")
	}
	s.sendMsg(m)
	return s.readMsg()
}

func publishN(t *testing.T, st *broker.Stream, n int) {
	t.Helper()
	for i := range n {
		if _, err := st.Publish(context.Background(), [][]byte{[]byte("e" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// stream_purge removes what an in-memory and a durable stream hold and
// answers with the count and the next offset; offsets go on; an unknown
// stream is not_found (and not created, even under auto-create); a second
// purge removes nothing.
func TestStreamPurgeRaw(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: true}),
		testbroker.WithStreams("t1/default/mem"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, SegmentBytes: 256}, "t1/default/disk"))
	s := dialRaw(t, tb).open()
	s.authPurge("t1")
	for i, name := range []string{"mem", "disk"} {
		st, err := tb.Broker.Stream("t1", "default", name)
		if err != nil {
			t.Fatal(err)
		}
		publishN(t, st, 20)
		id := uint64(10 * (i + 1))
		s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: name, RequestID: id})
		s.expectMsg(&wire.StreamPurged{RequestID: id, Purged: 20, Offset: 20})
		if got := st.Stats(); got.Oldest != 20 || got.Tail != 20 || got.Purged != 20 {
			t.Fatalf("%s after the purge: oldest %d tail %d purged %d, want 20 20 20", name, got.Oldest, got.Tail, got.Purged)
		}
		first, err := st.Publish(context.Background(), [][]byte{[]byte("after")})
		if err != nil || first != 20 {
			t.Fatalf("%s: publish after the purge got offset %d, %v; want 20", name, first, err)
		}
		_, err = st.Subscribe(broker.SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartOffset, Offset: 5}})
		if ce, ok := errors.AsType[*broker.CursorError](err); !ok || !ce.TooOld || ce.Available != 20 {
			t.Fatalf("%s: subscribe at a purged offset: %v, want too old with 20 available", name, err)
		}
		s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: name, RequestID: id + 1})
		s.expectMsg(&wire.StreamPurged{RequestID: id + 1, Purged: 1, Offset: 21})
		s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: name, RequestID: id + 2})
		s.expectMsg(&wire.StreamPurged{RequestID: id + 2, Purged: 0, Offset: 21})
	}
	s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "nope", RequestID: 99})
	m, ok := s.readMsg().(*wire.StreamError)
	if !ok || m.RequestID != 99 || m.Code != wire.StreamCodeNotFound {
		t.Fatalf("purge of an unknown stream: %#v, want stream_error not_found for 99", m)
	}
	if _, err := tb.Broker.LookupStream("t1", "default", "nope"); !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("the purge created the stream: %v", err)
	}
	// The stream goes on serving after a refusal.
	s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "mem", RequestID: 100})
	s.expectMsg(&wire.StreamPurged{RequestID: 100, Purged: 0, Offset: 21})
}

// Without the capability stream_purge is an unknown message (the stream
// is reset) and nothing is purged; another tenant's stream is refused
// with tenant mismatch.
func TestStreamPurgeNotNegotiatedOrWrongTenant(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/mem"))
	st, err := tb.Broker.Stream("t1", "default", "mem")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, st, 3)
	c := dialRaw(t, tb)
	s := c.open()
	s.auth("t1", wire.U16(wire.KnownFlags))
	s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "mem", RequestID: 1})
	s.expectReset()
	s = c.open()
	s.authPurge("t2")
	s.sendMsg(&wire.StreamPurge{TenantID: "t1", Namespace: "default", Stream: "mem", RequestID: 2})
	s.expectMsg(&wire.ErrorMessage{Message: "tenant mismatch"})
	if got := st.Stats(); got.Oldest != 0 || got.Purged != 0 {
		t.Fatalf("refused purges removed events: %+v", got)
	}
}

// A purge needs stream.manage on the stream: publish and subscribe rights
// are not enough.
func TestStreamPurgeNeedsStreamManage(t *testing.T) {
	tb, sg := tokenBroker(t)
	st, err := tb.Broker.Stream("a", "ns", "s")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, st, 4)
	c := dialRaw(t, tb)
	try := func(perms []string, id uint64) wire.Message {
		return c.askWith(sg, perms, &wire.StreamPurge{TenantID: "a", Namespace: "ns", Stream: "s", RequestID: id})
	}
	m := try([]string{"stream.publish:stream:a/ns/s", "stream.subscribe:stream:a/ns/s", "stream.manage:stream:a/ns/other"}, 1)
	if e, ok := m.(*wire.StreamError); !ok || e.Code != wire.StreamCodeForbidden || e.RequestID != 1 {
		t.Fatalf("without stream.manage: %#v, want stream_error forbidden", m)
	}
	if st.Stats().Purged != 0 {
		t.Fatal("a forbidden purge removed events")
	}
	m = try([]string{"stream.manage:stream:a/ns/*"}, 2)
	if p, ok := m.(*wire.StreamPurged); !ok || p.Purged != 4 || p.Offset != 4 {
		t.Fatalf("with stream.manage: %#v, want 4 purged", m)
	}
}

// cache_flush removes every entry and answers with the count; versions
// keep growing; an unknown cache is not_found and is not created, even
// under auto-create; it needs cache.manage.
func TestCacheFlushRaw(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{}, "t1/default/c"),
		testbroker.WithServerOptions(server.Options{AutoCreateCaches: true}))
	c, err := tb.Caches.Get(cache.Scope{Tenant: "t1", Namespace: "default", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 30 {
		if last, err = c.Put("k"+strconv.Itoa(i), []byte("v"), cache.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := dialRaw(t, tb).open()
	s.authPurge("t1")
	s.sendMsg(&wire.CacheFlush{TenantID: "t1", Namespace: "default", Cache: "c", RequestID: 7})
	s.expectMsg(&wire.CacheFlushed{RequestID: 7, Removed: 30})
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("%d entries after the flush", st.Entries)
	}
	if v, err := c.Put("k0", []byte("w"), cache.PutOptions{}); err != nil || v <= last {
		t.Fatalf("put after the flush: version %d (last before %d), %v", v, last, err)
	}
	s.sendMsg(&wire.CacheFlush{TenantID: "t1", Namespace: "default", Cache: "nope", RequestID: 8})
	if m, ok := s.readMsg().(*wire.CacheError); !ok || m.RequestID != 8 || m.Code != wire.StreamCodeNotFound {
		t.Fatalf("flush of an unknown cache: %#v, want cache_error not_found", m)
	}
	if _, err := tb.Caches.Get(cache.Scope{Tenant: "t1", Namespace: "default", Cache: "nope"}); err == nil {
		t.Fatal("the flush created the cache")
	}
	// Without the capability: an unknown message.
	s = dialRaw(t, tb).open()
	s.authExt()
	s.sendMsg(&wire.CacheFlush{TenantID: "t1", Namespace: "default", Cache: "c", RequestID: 9})
	s.expectReset()
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("a refused flush removed entries: %d left, want 1", st.Entries)
	}
}

func TestCacheFlushNeedsCacheManage(t *testing.T) {
	tb, sg := tokenBroker(t)
	c, err := tb.Caches.Get(cache.Scope{Tenant: "a", Namespace: "ns", Cache: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put("k", []byte("v"), cache.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	conn := dialRaw(t, tb)
	try := func(perms []string, id uint64) wire.Message {
		return conn.askWith(sg, perms, &wire.CacheFlush{TenantID: "a", Namespace: "ns", Cache: "c", RequestID: id})
	}
	m := try([]string{"cache.read:cache:a/ns/c", "cache.write:cache:a/ns/c"}, 1)
	if e, ok := m.(*wire.CacheError); !ok || e.Code != wire.StreamCodeForbidden || e.RequestID != 1 {
		t.Fatalf("without cache.manage: %#v, want cache_error forbidden", m)
	}
	if c.Stats().Entries != 1 {
		t.Fatal("a forbidden flush removed entries")
	}
	if m := try([]string{"cache.manage:cache:a/ns/*"}, 2); !reflect.DeepEqual(m, &wire.CacheFlushed{RequestID: 2, Removed: 1}) {
		t.Fatalf("with cache.manage: %#v", m)
	}
}

// A queue_join with a start (management extension) starts the group it
// creates there: latest skips the stream's history, an offset starts at
// it; a group that exists keeps its position; without the capability, or
// with an offset beyond the end, the join is refused.
func TestQueueJoinStart(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, st, 5)
	c := dialRaw(t, tb)
	join := func(flags uint16, group string, start *wire.StartPosition) *rawStream {
		s := c.open()
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: &flags})
		if _, ok := s.readMsg().(*wire.AuthOK); !ok {
			t.Fatal("auth refused")
		}
		s.r.AllowFlags(wire.FlagQueueDelivery)
		one := uint64(1)
		s.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: group, Prefetch: &one, Start: start})
		return s
	}
	all := wire.KnownFlags | wire.CapQueue | wire.CapManage
	latest := &wire.StartPosition{Kind: wire.StartLatest}
	s := join(all, "new", latest)
	if _, ok := s.readMsg().(*wire.QueueJoined); !ok {
		t.Fatal("join with start latest refused")
	}
	publishN(t, st, 1) // offset 5
	if d := nextDelivery(t, s); d.Offset != 5 {
		t.Fatalf("a group started at latest got offset %d first, want 5", d.Offset)
	}
	s = join(all, "mid", &wire.StartPosition{Kind: wire.StartOffset, Offset: 3})
	if _, ok := s.readMsg().(*wire.QueueJoined); !ok {
		t.Fatal("join with start offset refused")
	}
	if d := nextDelivery(t, s); d.Offset != 3 {
		t.Fatalf("a group started at offset 3 got offset %d first", d.Offset)
	}
	// The group exists: a start does not move it.
	s = join(all, "mid", latest)
	if _, ok := s.readMsg().(*wire.QueueJoined); !ok {
		t.Fatal("second join refused")
	}
	if d := nextDelivery(t, s); d.Offset != 4 {
		t.Fatalf("an existing group's second member got offset %d, want 4 (the group's position)", d.Offset)
	}
	s = join(wire.KnownFlags|wire.CapQueue, "x", latest)
	if m, ok := s.readMsg().(*wire.ErrorMessage); !ok || !strings.Contains(m.Message, "management extension") {
		t.Fatalf("start without the capability: %#v", m)
	}
	s = join(all, "y", &wire.StartPosition{Kind: wire.StartOffset, Offset: 99})
	if m, ok := s.readMsg().(*wire.ErrorMessage); !ok || !strings.Contains(m.Message, "beyond the end") {
		t.Fatalf("start beyond the end: %#v", m)
	}
}
