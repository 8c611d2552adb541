package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// After Close, a consumer hands out nothing: the broker was told (by
// queue_leave) that every delivery the application had not taken went back
// unseen, so one handed out later would be held twice (here and by the
// member it was redelivered to) without its attempt counted.
func TestExplore2NextAfterCloseHandsOutNothing(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{MaxAttempts: 3}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	const n = 5000
	publishSeq(t, c, "jobs", 0, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	late := 0
	for round := 0; round < 150 && late == 0; round++ {
		co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(8))
		if err != nil {
			t.Fatal(err)
		}
		// Keep deliveries flowing: ack a few, then close while the
		// replacements are on their way.
		for i := range 6 {
			m, err := co.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				go m.Ack(ctx)
			} else if err := m.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
		co.Close()
		nctx, ncancel := context.WithTimeout(ctx, 20*time.Millisecond)
		for {
			m, err := co.Next(nctx)
			if err != nil {
				break
			}
			late++
			t.Logf("round %d: Next after Close returned offset %d attempt %d", round, m.Offset, m.Attempt)
		}
		ncancel()
	}
	if late > 0 {
		t.Fatalf("%d deliveries handed out after Close", late)
	}
}

// A stream deleted under a joined consumer (the control plane's applier
// deletes the stream, removes its directory, then calls ForgetStreams):
// the consumer ends with "queue group closed: …" even when the stream's
// log closes before its group does. (It hung: the delivery loop stopped
// on the closed log without a word while the ack reader waited on.)
func TestExplore2DeletedStreamEndsConsumerBeforeForget(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{StateDir: t.TempDir()}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		nextAck(t, ctx, co)
	}
	if err := tb.Broker.DeleteStream("default", "default", "jobs"); err != nil {
		t.Fatal(err)
	}
	defer tb.Server.ForgetStreams([]broker.StreamKey{{Tenant: "default", Namespace: "default", Stream: "jobs"}})
	ended, ecancel := context.WithTimeout(ctx, 5*time.Second)
	defer ecancel()
	if m, err := co.Next(ended); err == nil {
		t.Fatalf("got offset %d after the delete", m.Offset)
	} else if ended.Err() != nil || !strings.Contains(err.Error(), "queue group closed") {
		t.Fatalf("consumer after the delete: %v, want it ended with \"queue group closed\"", err)
	}
}

// Retention runs ahead of a durable group (small segments, a small size
// bound, retention every few milliseconds) while a slow consumer works and
// a publisher keeps appending; the broker restarts in the middle. The
// consumer never stops or errs, sees every offset at most once per
// attempt in increasing first-delivery order, and at the end the group has
// nothing left: the records retention took before they were delivered are
// counted as lost, the others acked.
func TestExplore2RetentionAheadOfGroup(t *testing.T) {
	logDir, stateDir := t.TempDir(), t.TempDir()
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(logDir, commitlog.Options{Sync: commitlog.SyncNever, SegmentBytes: 2048,
			RetentionBytes: 4096, RetentionInterval: 5 * time.Millisecond}, "default/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{StateDir: stateDir, TickInterval: 10 * time.Millisecond}}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 3000
	acked := map[uint64]bool{}
	var last uint64
	consume := func(pub *client.Client, from, to uint64) {
		c := dial(t, tb, client.Options{})
		defer c.Close()
		co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(4))
		if err != nil {
			t.Fatal(err)
		}
		defer co.Close()
		for i := from; i < to; i += 50 {
			publishSeq(t, pub, "jobs", i, 50)
			for range 5 { // slower than the publisher: retention overtakes it
				m, err := co.Next(ctx)
				if err != nil {
					t.Fatalf("consumer: %v", err)
				}
				if acked[m.Offset] {
					t.Fatalf("offset %d delivered after its ack", m.Offset)
				}
				if m.Attempt == 1 && m.Offset < last {
					t.Fatalf("first delivery of %d after %d", m.Offset, last)
				}
				last = max(last, m.Offset)
				if err := m.Ack(ctx); err != nil {
					t.Fatalf("ack %d: %v", m.Offset, err)
				}
				acked[m.Offset] = true
			}
		}
	}
	pub := dial(t, tb, client.Options{})
	consume(pub, 0, n/2)
	pub.Close()
	tb.Restart()
	pub = dial(t, tb, client.Options{})
	consume(pub, n/2, n)
	// Drain what retention leaves.
	c := dial(t, tb, client.Options{})
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(64))
	if err != nil {
		t.Fatal(err)
	}
	for {
		st, ok := tb.Server.GroupStats("default", "default", "jobs", "g")
		if ok && st.Lag == 0 && st.Cursor == n {
			t.Logf("acked %d, stats %+v", len(acked), st)
			break
		}
		nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := co.Next(nctx)
		ncancel()
		if err != nil {
			t.Fatalf("draining: %v (stats %+v)", err, st)
		}
		if acked[m.Offset] {
			t.Fatalf("offset %d delivered after its ack", m.Offset)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		acked[m.Offset] = true
	}
	co.Close()
}
