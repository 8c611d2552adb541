package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/queue"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A dead-letter stream whose subscriber has stopped reading (under the
// block policy its publishers wait for it) slows down only the group that
// dead-letters into it: the ack timeouts and redeliveries of every other
// group go on. (Before, the server ticked all groups from one goroutine,
// and a dead-letter publish waiting on a stalled subscriber stopped ack
// timeouts, backoffs and dead letters for every group of the broker.)
func TestQueueStalledDeadLetterStreamStallsOnlyItsGroup(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs", "t1/default/other"),
		testbroker.WithStreams("t1/default/jobs.dlq"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 2 * time.Millisecond,
			AckTimeout: 20 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, MaxAttempts: 2}}))
	publish := func(stream string, payloads ...string) {
		t.Helper()
		st, err := tb.Broker.Stream("t1", "default", stream)
		if err != nil {
			t.Fatal(err)
		}
		var ps [][]byte
		for _, p := range payloads {
			ps = append(ps, []byte(p))
		}
		if _, err := st.Publish(context.Background(), ps); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(s *rawStream, off uint64, attempt uint16) {
		t.Helper()
		if d := nextDelivery(t, s); d.Offset != off || d.Attempt != attempt {
			t.Fatalf("delivery %d attempt %d, want %d attempt %d", d.Offset, d.Attempt, off, attempt)
		}
	}

	// A subscriber of jobs.dlq that never reads: one frame fills its queue.
	dlq, err := tb.Broker.Stream("t1", "default", "jobs.dlq")
	if err != nil {
		t.Fatal(err)
	}
	block := broker.Block
	if _, err := dlq.Subscribe(broker.SubscribeOptions{Policy: &block, QueueCapacity: 1}); err != nil {
		t.Fatal(err)
	}

	c := dialRaw(t, tb)
	jobs := c.open()
	joinRaw(t, jobs, "w1") // jobs, group g, prefetch 1; it never acks
	publish("jobs", "a", "b")
	// Each is delivered twice, then dead-lettered: the first fills the
	// subscriber's queue, the second's publish waits for the subscriber.
	for range 4 {
		nextDelivery(t, jobs)
	}
	waitFor(t, "the second dead letter's publish", func() bool { return dlq.Tail() == 2 }, nil)

	other := c.open()
	authQueue(t, other)
	other.r.AllowFlags(wire.FlagQueueDelivery)
	name, one := "w2", uint64(1)
	other.sendMsg(&wire.QueueJoin{TenantID: "t1", Namespace: "default", Stream: "other", Group: "h", Consumer: &name, Prefetch: &one})
	other.expectMsg(&wire.QueueJoined{Group: "h", Consumer: name, Prefetch: 1})
	publish("other", "x")
	expect(other, 0, 1)
	expect(other, 0, 2) // its ack timeout is still processed
}

// A record too large to go to the dead-letter stream whole (its JSON
// dead letter, the payload in base64, exceeds the stream's record limit)
// is dead-lettered without its payload, the reason saying so. (Before,
// every attempt failed with "record too large": the record stayed in the
// group for good, its dead letter retried and re-encoded at every tick.)
func TestQueueDeadLetterTooLargeForTheDLQ(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever, MaxRecordBytes: 1024},
			"t1/default/jobs", "t1/default/jobs.dlq"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{MaxAttempts: 1}}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(context.Background(), [][]byte{make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	w := dialRaw(t, tb).open()
	joinRaw(t, w, "w1")
	if d := nextDelivery(t, w); d.Offset != 0 || len(d.Payload) != 1000 {
		t.Fatalf("delivery %d of %d bytes", d.Offset, len(d.Payload))
	}
	w.sendMsg(&wire.QueueNack{Offset: 0, RequestID: wire.U64(1)})
	w.expectMsg(&wire.QueueOK{RequestID: 1})
	s, ok := tb.Server.GroupStats("t1", "default", "jobs", "g")
	if !ok || s.DeadLettered != 1 || s.Lag != 0 {
		t.Fatalf("group stats %+v, want the record dead-lettered", s)
	}
	dlq, err := tb.Broker.Stream("t1", "default", "jobs.dlq")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := dlq.Log().Read(0, 10, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("dead-letter stream: %d records, %v", len(recs), err)
	}
	var dl wire.DeadLetter
	if err := json.Unmarshal(recs[0].Payload, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Offset != 0 || dl.Attempts != 1 || dl.Payload != nil ||
		dl.Reason != "max attempts (1) exceeded: nacked; payload of 1000 bytes omitted: too large for the dead-letter stream" {
		t.Fatalf("dead letter %+v", dl)
	}
}

// The same when the dead letter fits the dead-letter stream's records but
// not its subscribers' frames: a record that fits the frame limit, in
// base64 within JSON, would make an event the broker refuses at publish
// (too large for any subscriber reading with the limit). It goes without
// its payload, and a subscriber of the dead-letter stream reading with
// the broker's limit gets it.
func TestQueueDeadLetterTooLargeForTheFrameLimit(t *testing.T) {
	const maxFrame = 64 << 10
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithStreams("t1/default/jobs.dlq"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: maxFrame, Queues: server.QueueOptions{MaxAttempts: 1}}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	const size = 50000 // about 66,700 bytes in base64: over the frame limit
	if _, err := st.Publish(context.Background(), [][]byte{make([]byte, size)}); err != nil {
		t.Fatal(err)
	}
	dlq, err := tb.Broker.Stream("t1", "default", "jobs.dlq")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := dlq.Subscribe(broker.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := dialRaw(t, tb).open()
	joinRaw(t, w, "w1")
	if d := nextDelivery(t, w); d.Offset != 0 || len(d.Payload) != size {
		t.Fatalf("delivery %d of %d bytes", d.Offset, len(d.Payload))
	}
	w.sendMsg(&wire.QueueNack{Offset: 0, RequestID: wire.U64(1)})
	w.expectMsg(&wire.QueueOK{RequestID: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frame, _, err := sub.NextBatch(ctx, nil)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if n := len(frame) - wire.HeaderSize; n > maxFrame {
		t.Fatalf("dead-letter event frame of %d bytes, over the limit %d", n, maxFrame)
	}
	f, err := wire.NewReader(bytes.NewReader(frame), maxFrame).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	var eb wire.BinaryEventBatch
	if err := wire.DecodeEventBatch(f.Flags, f.Payload, &eb); err != nil || len(eb.Payloads) != 1 {
		t.Fatalf("dead-letter frame: %d events, %v", len(eb.Payloads), err)
	}
	var dl wire.DeadLetter
	if err := json.Unmarshal(eb.Payloads[0], &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Offset != 0 || dl.Attempts != 1 || dl.Payload != nil ||
		dl.Reason != "max attempts (1) exceeded: nacked; payload of 50000 bytes omitted: too large for the dead-letter stream" {
		t.Fatalf("dead letter %+v", dl)
	}
	if s, ok := tb.Server.GroupStats("t1", "default", "jobs", "g"); !ok || s.DeadLettered != 1 || s.DeadLettersDropped != 0 {
		t.Fatalf("group stats %+v", s)
	}
}

// A consumer that goes away while its nack's dead letter waits for a
// stalled subscriber of the dead-letter stream (policy block) does not
// get the record dead-lettered twice: the dead letter was written to the
// stream before the wait, and only its delivery to that subscriber was
// cut short. (Before, the cut-short publish counted as a failure: the
// record stayed in the group and the next tick wrote a second dead
// letter, then waited on the same subscriber, for good.)
func TestQueueDeadLetterWrittenOnceWhenNackerLeaves(t *testing.T) {
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithStreams("t1/default/jobs.dlq"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 2 * time.Millisecond, MaxAttempts: 1}}))
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := tb.Broker.Stream("t1", "default", "jobs.dlq")
	if err != nil {
		t.Fatal(err)
	}
	block := broker.Block
	sub, err := dlq.Subscribe(broker.SubscribeOptions{Policy: &block, QueueCapacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dlq.Publish(context.Background(), [][]byte{[]byte("fills the subscriber's queue")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Publish(context.Background(), [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, tb)
	w := c.open()
	joinRaw(t, w, "w1")
	if d := nextDelivery(t, w); d.Offset != 0 {
		t.Fatalf("delivery %+v", d)
	}
	w.sendMsg(&wire.QueueNack{Offset: 0}) // its last attempt: the dead letter waits for the subscriber
	waitFor(t, "the dead letter's publish", func() bool { return dlq.Tail() == 2 }, nil)
	c.cc.Close() // the consumer goes away: its nack's wait ends
	var s queue.Stats
	waitFor(t, "the record dead-lettered", func() bool {
		s, _ = tb.Server.GroupStats("t1", "default", "jobs", "g")
		return s.DeadLettered == 1
	}, func() string { return fmt.Sprintf("group stats %+v, dead-letter stream tail %d", s, dlq.Tail()) })
	if n := dlq.Tail(); n != 2 {
		t.Fatalf("dead-letter stream holds %d records, want 2 (the filler and one dead letter)", n)
	}
	if s.DeadLetterErrors != 0 || s.Lag != 0 {
		t.Fatalf("group stats %+v", s)
	}
	sub.Close()
}

// waitFor polls cond until it holds; the test fails if it does not within
// 10 s, saying what it waited for and (with detail) what it saw.
func waitFor(t *testing.T, what string, cond func() bool, detail func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			if detail != nil {
				what += ": " + detail()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
