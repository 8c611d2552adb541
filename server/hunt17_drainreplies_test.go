package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// drainWindow starts tb's Shutdown and returns once the drain has closed
// the broker's engine, its connections still open: a service request
// held in flight (its responder does not answer) keeps the drain waiting.
// release answers the request, which lets the drain finish, and returns
// Shutdown's error.
func drainWindow(t *testing.T, tb *testbroker.Broker) (release func() error) {
	t.Helper()
	resp := serveRaw(t, dialRaw(t, tb), wire.U64(1))
	rq := dialRaw(t, tb).open()
	authRequest(t, rq)
	rq.sendMsg(req(1, "held", nil))
	sr := resp.readMsg().(*wire.ServiceRequest)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Liveness)
	done := make(chan error, 1)
	go func() { done <- tb.Server.Shutdown(ctx) }()
	testwait.Eventually(t, "the drain closes the engine", func() bool {
		_, err := tb.Broker.LookupStream("t1", "default", "no-such-stream")
		return errors.Is(err, broker.ErrClosed)
	})
	return func() error {
		defer cancel()
		resp.sendMsg(&wire.ServiceReply{RequestID: sr.RequestID, Payload: []byte("answered")})
		rq.expectMsg(&wire.Reply{RequestID: 1, Payload: []byte("answered")})
		return <-done
	}
}

// Every request a draining broker reads on a stream it accepted before
// the drain, after its engine closed, gets the same answer whatever its
// kind: subscribe, queue join and serve get `error "broker closed"`
// (which the SDK takes as a lost connection, retried on the restarted
// broker), an acked publish `publish_error "broker closed"`, queue_stats
// and queue_delete `queue_error "unavailable" "broker closed"` (not
// not_found, nor invalid: the group is there, the broker is going away), and a cache request is served (the
// caches close after the connections).
func TestHunt17DrainRepliesByStreamKind(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithStreams("t1/default/demo"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithCaches(cache.Config{}, "t1/default/c"))
	c := dialRaw(t, tb)
	all := wire.KnownFlags | wire.CapQueue | wire.CapRequest | wire.CapCacheExt
	streams := map[string]*rawStream{}
	for _, kind := range []string{"subscribe", "subscribe durable", "join", "serve", "publish", "queue_stats", "queue_delete", "cache"} {
		s := c.open()
		s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev", ClientFlags: &all})
		if _, ok := s.readMsg().(*wire.AuthOK); !ok {
			t.Fatalf("%s: auth refused", kind)
		}
		streams[kind] = s
	}
	// A group with members before the drain: it exists.
	joinRaw(t, dialRaw(t, tb).open(), "w0")

	release := drainWindow(t, tb)
	closed := &wire.ErrorMessage{Message: "broker closed"}
	check := func(kind string, m wire.Message, want wire.Message) {
		t.Helper()
		s := streams[kind]
		s.sendMsg(m)
		got := s.readMsg()
		gb, _ := wire.AppendMessageFrame(nil, got)
		wb, _ := wire.AppendMessageFrame(nil, want)
		if string(gb) != string(wb) {
			t.Errorf("%s during the drain: got %s, want %s", kind, gb[wire.HeaderSize:], wb[wire.HeaderSize:])
		}
	}
	check("subscribe", &wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "demo"}, closed)
	check("subscribe durable", &wire.Subscribe{TenantID: "t1", Namespace: "default", Stream: "jobs"}, closed)
	check("join", &wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g"}, closed)
	check("serve", &wire.Serve{TenantID: "t1", Namespace: "default", Service: "other"}, closed)
	check("publish", &wire.Publish{TenantID: "t1", Namespace: "default", Stream: "demo", Payload: []byte("x"), RequestID: wire.U64(3)},
		&wire.PublishError{RequestID: 3, Message: "broker closed"})
	check("queue_stats", &wire.QueueStats{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", RequestID: 4},
		&wire.QueueError{RequestID: wire.U64(4), Code: "unavailable", Message: "broker closed"})
	check("queue_delete", &wire.QueueDelete{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", RequestID: 6},
		&wire.QueueError{RequestID: wire.U64(6), Code: "unavailable", Message: "broker closed"})
	cs := streams["cache"]
	cs.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: []byte("v"), RequestID: wire.U64(5)})
	if m, ok := cs.readMsg().(*wire.CacheOK); !ok || m.RequestID != 5 {
		t.Errorf("cache put during the drain: got %#v, want cache_ok 5", m)
	}
	if err := release(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// A consumer whose group the drain closes is told so with one text,
// whichever of the drain's steps (closing the groups, then the engine) it
// sees first: `queue group closed: broker shutting down`, not sometimes
// `queue group closed: broker closed` (the engine closed before the
// consumer's writer looked at its stream).
func TestHunt17ConsumerDrainTextIsOne(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"))
	s := dialRaw(t, tb).open()
	joinRaw(t, s, "w1")
	tb.Broker.Close() // the engine closed before the groups are: the drain's other order
	release := drainWindow(t, tb)
	m := s.readMsg()
	if err := release(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if qe, ok := m.(*wire.QueueError); !ok || qe.RequestID != nil || qe.Message != "queue group closed: broker shutting down" {
		t.Fatalf("consumer during the drain: %#v, want queue_error \"queue group closed: broker shutting down\"", m)
	}
}
