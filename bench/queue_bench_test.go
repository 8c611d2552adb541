package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// checkQueueRun fails unless every record of res was acked exactly once
// and the latency histogram saw every measured record.
func checkQueueRun(t *testing.T, res QueueResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v (result %+v)", res.Target, err, res)
	}
	c := res.Config
	want := int64(c.Records + c.Warmup)
	if res.Published != want || res.Acked != want || res.Lost != 0 || res.Duplicates != 0 ||
		res.AckErrors != 0 || res.Invalid != 0 {
		t.Fatalf("%s: published %d acked %d lost %d dups %d ack errors %d (%s) invalid %d; want %d each acked once",
			res.Target, res.Published, res.Acked, res.Lost, res.Duplicates, res.AckErrors, res.FirstAckError, res.Invalid, want)
	}
	if res.Latency.Count != int64(c.Records) || res.AckedPerSec <= 0 || res.PublishedPerSec <= 0 || res.Latency.P50 <= 0 {
		t.Fatalf("%s: latency %v, %.0f acked/s, %.0f published/s", res.Target, res.Latency, res.AckedPerSec, res.PublishedPerSec)
	}
	t.Logf("%s: %.0f acked/s, %v", res.Target, res.AckedPerSec, res.Latency)
}

func TestQueueFelixEmbedded(t *testing.T) {
	fb, err := StartEmbeddedQueueFelix(commitlog.SyncInterval, QueueBenchStream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fb.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	// Batches; then, in the same group, single publishes at a fixed rate.
	tgt := &FelixQueueTarget{Addr: fb.Addr, TLS: fb.TLS}
	res, err := RunQueue(ctx, tgt, QueueConfig{Records: 3000, Warmup: 200, Consumers: 4, PublishBatch: 64, Timeout: time.Minute})
	checkQueueRun(t, res, err)
	res, err = RunQueue(ctx, tgt, QueueConfig{Records: 500, Consumers: 2, PublishBatch: 1, PublishWindow: 8, Rate: 5000, Timeout: time.Minute})
	checkQueueRun(t, res, err)
	// Fire-and-forget acks (Message.AckAsync): still every record once.
	res, err = RunQueue(ctx, &FelixQueueTarget{Addr: fb.Addr, TLS: fb.TLS, AsyncAck: true},
		QueueConfig{Records: 3000, Warmup: 200, Consumers: 4, PublishBatch: 64, Timeout: time.Minute})
	checkQueueRun(t, res, err)
	// A new group starts at the stream's oldest record: it gets the 6900
	// records of the runs before, which are not this run's.
	res, err = RunQueue(ctx, &FelixQueueTarget{Addr: fb.Addr, TLS: fb.TLS, Group: "other"},
		QueueConfig{Records: 100, Consumers: 2, Timeout: time.Minute})
	if err != nil || res.Acked != 100 || res.Duplicates != 0 || res.Lost != 0 || res.Invalid != 6900 {
		t.Fatalf("new group: %v: %+v", err, res)
	}
	out := QueueTable{}.Format([]QueueResult{res})
	if !strings.Contains(out, "acked/s vs felix") || !strings.Contains(out, "felix: acks: Message.Ack") ||
		!strings.Contains(out, "6900 deliveries not from this run") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestQueueNATSJetStream(t *testing.T) {
	url := startNATSOrSkip(t, NATSServerOptions{JetStream: true})
	ctx := context.Background()
	res, err := RunQueue(ctx, &NATSQueueTarget{URL: url},
		QueueConfig{Records: 3000, Warmup: 200, Consumers: 4, Timeout: time.Minute})
	checkQueueRun(t, res, err)
	if res.Redelivered != 0 {
		t.Errorf("%d redeliveries", res.Redelivered)
	}
	// Again on the same server (the stream is recreated), with plain acks.
	res, err = RunQueue(ctx, &NATSQueueTarget{URL: url, SingleAck: true},
		QueueConfig{Records: 1000, Consumers: 2, PublishBatch: 1, PublishWindow: 16, Timeout: time.Minute})
	checkQueueRun(t, res, err)
	out := QueueTable{Baseline: "nats-js"}.Format([]QueueResult{res})
	if !strings.Contains(out, "fire-and-forget") || !strings.Contains(out, "1.00x") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestQueueConfigChecks(t *testing.T) {
	for _, c := range []QueueConfig{
		{PayloadSize: 16},
		{Records: -1},
		{PublishBatch: 64, PublishWindow: 32},
		{Consumers: -2},
		{Rate: -1},
		{Records: 1 << 20, PayloadSize: 1 << 20},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c, err := QueueConfig{PublishBatch: 500}.withDefaults()
	if err != nil || c.PublishWindow != 500 || c.Records != DefaultQueueRecords || c.Consumers != 4 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}
