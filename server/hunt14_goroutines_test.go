package server_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// One connection holding every kind of long-lived stream, none of which it
// reads (responders sent requests, requesters waiting for results,
// subscribers, queue consumers with deliveries, streams stalled inside a
// frame, a stream blocked on its answers), costs goroutines only while it
// lasts: once it closes, the broker is back to the goroutines it had
// before, and its gauges to 0.
func TestHunt14ClosedConnectionLeavesNoGoroutines(t *testing.T) {
	const each = 10
	tb := testbroker.Start(t, testbroker.WithStreams("t1/default/demo"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	for range 4 * each {
		if _, err := st.Publish(t.Context(), [][]byte{make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	// A connection dialed and closed first: the transport's own goroutines
	// (the socket's, the listener's) are in the baseline.
	dialRaw(t, tb).open().auth("t1", nil)
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	c := dialRaw(t, tb)
	for range each {
		serveRaw(t, c, nil)
	}
	for i := range 2 * each { // each responder gets some; the rest wait
		rq := c.open()
		authRequest(t, rq)
		rq.sendMsg(req(uint64(i), "x", wire.U64(60_000)))
	}
	for range each {
		if m := c.subscribeRaw(t, "demo", nil); m.Type() != wire.TypeSubscribed {
			t.Fatalf("subscribe: %#v", m)
		}
		qs := c.open()
		authQueue(t, qs)
		qs.r.AllowFlags(wire.FlagQueueDelivery)
		qs.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "jobs", Group: "g", Prefetch: wire.U64(4)})
		if m := qs.readMsg(); m.Type() != wire.TypeQueueJoined {
			t.Fatalf("queue_join: %#v", m)
		}
		p := c.open()
		p.auth("t1", nil)
		p.send(wire.AppendHeader(nil, 0, 1<<20)) // a frame that never comes
		p.send(make([]byte, 100))
	}
	blocked := c.open()
	blocked.auth("t1", nil)
	blocked.lenient = true
	blocked.send(answerFlood()) // answers beyond the client's window, never read
	if n := runtime.NumGoroutine(); n < before+5*each {
		t.Fatalf("%d goroutines with the streams open, %d before: the streams are not being served", n, before)
	}

	c.cc.Close()
	deadline := time.Now().Add(testwait.Liveness)
	for {
		n := runtime.NumGoroutine()
		subs, pending := tb.Server.Stats().Subscriptions.Load(), tb.Server.ServiceStats()
		if n <= before && subs == 0 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines %v after the connection closed, %d before; subscriptions %d; service stats %+v\n%s",
				n, testwait.Liveness, before, subs, pending, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
