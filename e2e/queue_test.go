package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
)

func startQueueBroker(t *testing.T, q server.QueueOptions, streams ...string) *testbroker.Broker {
	t.Helper()
	q.TickInterval = 10 * time.Millisecond
	return testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, streams...),
		testbroker.WithServerOptions(server.Options{Queues: q}))
}

func publishSeq(t *testing.T, c *client.Client, stream string, from, n uint64) {
	t.Helper()
	ctx := context.Background()
	const batch = 500
	for i := from; i < from+n; i += batch {
		var ps [][]byte
		for j := i; j < min(i+batch, from+n); j++ {
			ps = append(ps, seq(j, 16))
		}
		if err := c.PublishBatch(ctx, "default", stream, ps); err != nil {
			t.Fatal(err)
		}
	}
}

// 100,000 records over 4 consumers: each acked exactly once, none lost.
func TestQueueHundredThousandFourConsumers(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	pub := dial(t, tb, client.Options{})
	const n = 100_000
	publishSeq(t, pub, "jobs", 0, n)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var mu sync.Mutex
	acked := make(map[uint64]int, n)
	var total atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		c := dial(t, tb, client.Options{EventConns: 1})
		opts := []client.ConsumerOption{client.WithConsumerName("w" + string(rune('0'+w)))}
		if w%2 == 1 {
			opts = append(opts, client.WithAsyncAck()) // half ack fire-and-forget
		}
		wg.Go(func() {
			err := c.Consume(ctx, "default", "jobs", "workers", func(_ context.Context, m *client.Message) error {
				if got := binary.BigEndian.Uint64(m.Payload); got != m.Offset {
					t.Errorf("consumer %d: payload %d at offset %d", w, got, m.Offset)
				}
				mu.Lock()
				acked[m.Offset]++
				mu.Unlock()
				if total.Add(1) == n {
					close(done)
				}
				return nil
			}, opts...)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("consumer %d: %v", w, err)
			}
		})
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("only %d of %d handled", total.Load(), n)
	}
	// Let the last acks land, then check the group is drained.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := queueStats(t, tb, "jobs", "workers")
		if st.Acked == n {
			if st.Lag != 0 || st.InFlight != 0 || st.Redelivered != 0 {
				t.Fatalf("stats after draining: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acked %d of %d", st.Acked, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for off := range uint64(n) {
		if acked[off] != 1 {
			t.Fatalf("offset %d handled %d times", off, acked[off])
		}
	}
}

func queueStats(t *testing.T, tb *testbroker.Broker, stream, group string) queueStat {
	t.Helper()
	k, _ := tb.Server.GroupStats("default", "default", stream, group)
	return queueStat{Acked: k.Acked, Lag: k.Lag, InFlight: uint64(k.InFlight), Redelivered: k.Redelivered,
		DeadLettered: k.DeadLettered, TimedOut: k.TimedOut}
}

type queueStat struct{ Acked, Lag, InFlight, Redelivered, DeadLettered, TimedOut uint64 }

// A consumer that vanishes with records in flight: they go to the others.
// A consumer that hangs: its records are redelivered after the ack timeout.
func TestQueueRedeliveryToOthers(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{AckTimeout: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond}, "default/default/jobs")
	pub := dial(t, tb, client.Options{})
	publishSeq(t, pub, "jobs", 0, 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Crash: a consumer takes 4 and its connection dies.
	crasher := dial(t, tb, client.Options{})
	co, err := crasher.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(4))
	if err != nil {
		t.Fatal(err)
	}
	taken := map[uint64]bool{}
	for range 4 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		taken[m.Offset] = true
	}
	crasher.Close() // abrupt: no acks

	// Hang: a consumer takes 2 and never acks.
	hung := dial(t, tb, client.Options{})
	hc, err := hung.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(2))
	if err != nil {
		t.Fatal(err)
	}
	hungTook := map[uint64]bool{}
	for range 2 {
		m, err := hc.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hungTook[m.Offset] = true
	}

	// A healthy consumer acks what it gets. The hung consumer's records time
	// out and are redelivered (to any member with room, possibly the hung
	// one again, as in RabbitMQ or JetStream).
	good := dial(t, tb, client.Options{})
	gc, err := good.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(16))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	ackGood := func(m *client.Message) {
		if (taken[m.Offset] || hungTook[m.Offset]) && m.Attempt < 2 {
			t.Fatalf("redelivered offset %d with attempt %d", m.Offset, m.Attempt)
		}
		got[m.Offset]++
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for len(got) < 8 { // everything but the hung consumer's two
		m, err := gc.Next(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", len(got), err)
		}
		ackGood(m)
	}
	deadline := time.Now().Add(20 * time.Second)
	for queueStats(t, tb, "jobs", "g").TimedOut < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the hung consumer's deliveries never timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	hc.Close() // the hung consumer goes away: whatever it holds goes to the healthy one
	for len(got) < 10 {
		m, err := gc.Next(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", len(got), err)
		}
		ackGood(m)
	}
	for off := range uint64(10) {
		if got[off] != 1 {
			t.Fatalf("offset %d acked %d times by the healthy consumer", off, got[off])
		}
	}
	st := queueStats(t, tb, "jobs", "g")
	if st.Redelivered < 6 || st.Acked != 10 || st.TimedOut < 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A poison record lands in the dead-letter stream after max attempts.
func TestQueuePoisonToDeadLetter(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{MaxAttempts: 3}, "default/default/jobs", "default/default/jobs.dlq")
	c := dial(t, tb, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dlq, err := c.Subscribe(ctx, "default", "jobs.dlq", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "default", "jobs", []byte("poison")); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	cctx, ccancel := context.WithCancel(ctx)
	go c.Consume(cctx, "default", "jobs", "g", func(_ context.Context, m *client.Message) error {
		attempts = m.Attempt
		return errors.New("cannot parse")
	}, client.WithNackDelay(0))
	ev, err := dlq.Next(ctx)
	ccancel()
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Stream, Group, Reason, Payload string
		Offset                         uint64
		Attempts                       int
	}
	if err := json.Unmarshal(ev.Payload, &rec); err != nil {
		t.Fatalf("dead letter %q: %v", ev.Payload, err)
	}
	payload, _ := base64.StdEncoding.DecodeString(rec.Payload)
	if rec.Stream != "jobs" || rec.Group != "g" || rec.Offset != 0 || rec.Attempts != 3 || string(payload) != "poison" || rec.Reason == "" {
		t.Fatalf("dead letter %+v", rec)
	}
	if attempts != 3 {
		t.Fatalf("handler saw %d attempts", attempts)
	}
	// The group counts the dead letter once its publish has returned: a
	// subscriber of the dead-letter stream can see it a moment before.
	var st queueStat
	testwait.Eventually(t, "the group counting the dead letter", func() bool {
		st = queueStats(t, tb, "jobs", "g")
		return st.DeadLettered == 1
	})
	if st.Lag != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Prefetch is never exceeded: with 5 unacked, nothing more arrives until
// one is acked.
func TestQueuePrefetch(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, 50)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(5))
	if err != nil {
		t.Fatal(err)
	}
	var held []*client.Message
	for range 5 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, m)
	}
	idle, icancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if m, err := co.Next(idle); err == nil {
		t.Fatalf("a sixth delivery (offset %d) beyond prefetch 5", m.Offset)
	}
	icancel()
	if err := held[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := co.Next(ctx); err != nil {
		t.Fatalf("no delivery after an ack freed prefetch: %v", err)
	}
	if st := queueStats(t, tb, "jobs", "g"); st.InFlight != 5 {
		t.Fatalf("in flight %d, want 5", st.InFlight)
	}
}

// Deleting a stream drops its consumer groups and their durable state (what
// the control plane's applier asks through Server.ForgetStreams): the old
// group's consumer ends, and a stream created again under the same name
// starts with a fresh group at offset 0 instead of the old group's state.
func TestQueueGroupForgottenWithItsStream(t *testing.T) {
	stateDir := t.TempDir()
	tb := startQueueBroker(t, server.QueueOptions{StateDir: stateDir}, "default/default/jobs")
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
	groupDir := commitlog.DirFor(stateDir, "default", "default", "jobs")
	if _, err := os.Stat(groupDir); err != nil {
		t.Fatalf("no group state before the delete: %v", err)
	}

	if err := tb.Broker.DeleteStream("default", "default", "jobs"); err != nil {
		t.Fatal(err)
	}
	tb.Server.ForgetStreams([]broker.StreamKey{{Tenant: "default", Namespace: "default", Stream: "jobs"}})
	if _, err := os.Stat(groupDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted stream's group state is still there: %v", err)
	}
	ended, ecancel := context.WithTimeout(ctx, 5*time.Second)
	if m, err := co.Next(ended); err == nil {
		t.Fatalf("the old group's consumer got offset %d after the delete", m.Offset)
	} else if ended.Err() != nil || !strings.Contains(err.Error(), "queue group closed") {
		t.Fatalf("the old group's consumer: %v, want it ended with \"queue group closed\"", err)
	}
	ecancel()

	lg, err := commitlog.Open(filepath.Join(t.TempDir(), "jobs"), commitlog.Options{Sync: commitlog.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Broker.DeclareLoggedStream("default", "default", "jobs", broker.StreamOptions{Log: lg, Durable: true}); err != nil {
		lg.Close()
		t.Fatal(err)
	}
	publishSeq(t, c, "jobs", 100, 2)
	co2, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(2) {
		m, err := co2.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != i || !bytes.Equal(m.Payload, seq(100+i, 16)) {
			t.Fatalf("delivery %d: offset %d payload %x, want offset %d of the new stream", i, m.Offset, m.Payload, i)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// nextAck takes co's next delivery and acks it.
func nextAck(t *testing.T, ctx context.Context, co *client.Consumer) *client.Message {
	t.Helper()
	m, err := co.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// A stream's consumer groups are bounded (--queue-max-groups): one more
// group is refused with a clear error; asking the stats of a group that
// does not exist creates none; the existing groups go on.
func TestQueueGroupsPerStreamBounded(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{MaxGroupsPerStream: 2}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, g := range []string{"g1", "g2"} {
		co, err := c.Consumer(ctx, "default", "jobs", g)
		if err != nil {
			t.Fatalf("group %s: %v", g, err)
		}
		defer co.Close()
	}
	if _, err := c.Consumer(ctx, "default", "jobs", "g3"); err == nil || !strings.Contains(err.Error(), "too many consumer groups") {
		t.Fatalf("a third group: %v, want too many consumer groups", err)
	}
	if _, err := c.QueueStats(ctx, "default", "jobs", "g4"); !errors.Is(err, client.ErrQueueGroupNotFound) {
		t.Fatalf("stats of a group never joined: %v, want ErrQueueGroupNotFound (and no group created)", err)
	}
	if st, err := c.QueueStats(ctx, "default", "jobs", "g1"); err != nil || st.Members != 1 {
		t.Fatalf("stats of an existing group: %+v %v", st, err)
	}
}

// DeleteQueueGroup ends the group's consumers, frees its place under
// --queue-max-groups and forgets its state; an unknown group is
// ErrQueueGroupNotFound. Stats report the deliveries a closing consumer
// gave back unseen (Released).
func TestQueueDeleteGroup(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{MaxGroupsPerStream: 2}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g1, err := c.Consumer(ctx, "default", "jobs", "g1")
	if err != nil {
		t.Fatal(err)
	}
	defer g1.Close()
	nextAck(t, ctx, g1)
	g2, err := c.Consumer(ctx, "default", "jobs", "g2", client.WithPrefetch(5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.Next(ctx); err != nil { // taken, not acked: the other 4 are unseen
		t.Fatal(err)
	}
	g2.Close()
	for st, _ := c.QueueStats(ctx, "default", "jobs", "g2"); st.Released != 4; st, _ = c.QueueStats(ctx, "default", "jobs", "g2") {
		if ctx.Err() != nil {
			t.Fatalf("g2 stats %+v: want 4 released", st)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := c.DeleteQueueGroup(ctx, "default", "jobs", "g1"); err != nil {
		t.Fatal(err)
	}
	// g1's consumer may still hand out what it had buffered (4 records);
	// then it ends.
	for i := 0; ; i++ {
		_, err := g1.Next(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "group deleted") {
				t.Fatalf("g1 consumer after delete: %v, want group deleted", err)
			}
			break
		}
		if i == 4 {
			t.Fatal("g1 consumer goes on after its group was deleted")
		}
	}
	if err := c.DeleteQueueGroup(ctx, "default", "jobs", "g1"); !errors.Is(err, client.ErrQueueGroupNotFound) {
		t.Fatalf("second delete: %v, want ErrQueueGroupNotFound", err)
	}
	g3, err := c.Consumer(ctx, "default", "jobs", "g3") // the deleted group's place is free
	if err != nil {
		t.Fatal(err)
	}
	defer g3.Close()
	// The deleted group is gone; a group of its name starts again at the
	// oldest record.
	if st, err := c.QueueStats(ctx, "default", "jobs", "g1"); !errors.Is(err, client.ErrQueueGroupNotFound) {
		t.Fatalf("stats of the deleted g1: %+v %v, want ErrQueueGroupNotFound", st, err)
	}
	if err := c.DeleteQueueGroup(ctx, "default", "jobs", "g3"); err != nil {
		t.Fatal(err)
	}
	again, err := c.Consumer(ctx, "default", "jobs", "g1")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if m := nextAck(t, ctx, again); m.Offset != 0 || m.Attempt != 1 {
		t.Fatalf("g1 re-created delivered offset %d attempt %d, want offset 0 at attempt 1", m.Offset, m.Attempt)
	}
}

// AckAsync acks without waiting: every record acked that way is recorded
// by the broker (stats reach Acked == n, lag 0) and never delivered again,
// to this consumer or to a new one after it closed.
func TestQueueAckAsync(t *testing.T) {
	const n = 2000
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(32))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if m.Offset != uint64(i) || m.Attempt != 1 {
			t.Fatalf("record %d: offset %d attempt %d", i, m.Offset, m.Attempt)
		}
		if err := m.AckAsync(); err != nil {
			t.Fatal(err)
		}
	}
	for st, _ := c.QueueStats(ctx, "default", "jobs", "g"); st.Acked != n || st.Lag != 0; st, _ = c.QueueStats(ctx, "default", "jobs", "g") {
		if ctx.Err() != nil {
			t.Fatalf("stats %+v: want %d acked, lag 0", st, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	co.Close()
	co2, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatal(err)
	}
	defer co2.Close()
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if m, err := co2.Next(short); err == nil {
		t.Fatalf("offset %d delivered again after its AckAsync", m.Offset)
	}
	if st, err := c.QueueStats(ctx, "default", "jobs", "g"); err != nil || st.Redelivered != 0 || st.Acked != n {
		t.Fatalf("stats %+v %v: want no redelivery", st, err)
	}
}

// Stats of a group with durable state are answered after a broker restart,
// before any consumer joins it again (the group is opened from its state),
// while a group that never existed is ErrQueueGroupNotFound.
func TestQueueStatsOfAGroupKeptOnDisk(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{StateDir: t.TempDir()}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	publishSeq(t, c, "jobs", 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		nextAck(t, ctx, co)
	}
	co.Close()
	tb.Restart()
	c2 := dial(t, tb, client.Options{})
	st, err := c2.QueueStats(ctx, "default", "jobs", "g")
	if err != nil || st.Cursor < 3 || st.Lag != 2 {
		t.Fatalf("stats after restart: %+v %v, want the group's state (3 acked, lag 2)", st, err)
	}
	if _, err := c2.QueueStats(ctx, "default", "jobs", "nope"); !errors.Is(err, client.ErrQueueGroupNotFound) {
		t.Fatalf("stats of a group that never existed: %v, want ErrQueueGroupNotFound", err)
	}
}
