package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// waitStats polls the group's stats until ok holds, for at most 20 s.
func waitStats(t *testing.T, what string, get func() queueStat, ok func(queueStat) bool) queueStat {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := get()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A consumer slower than the ack timeout: its deliveries time out and are
// redelivered to it while older copies still sit unread in the SDK's
// buffer. A late ack of the first copy must come back promptly as "not in
// flight" (docs: a late ack is an error), not hang behind deliveries
// waiting for room in the buffer.
func TestExploreQueueLateAckWithFullBuffer(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{AckTimeout: 100 * time.Millisecond, BackoffMin: time.Millisecond,
		BackoffMax: time.Millisecond, MaxAttempts: 3}, "default/default/jobs")
	c := dial(t, tb, client.Options{RequestTimeout: 5 * time.Second})
	publishSeq(t, c, "jobs", 0, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(2))
	if err != nil {
		t.Fatal(err)
	}
	m, err := co.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Both deliveries time out and are redelivered to the only member
	// until they are dead-lettered (no dead-letter stream: dropped): 4
	// more copies than the buffer of 2 holds, and offset 0 is done.
	waitStats(t, "dead letters", func() queueStat { return queueStats(t, tb, "jobs", "g") },
		func(st queueStat) bool { return st.DeadLettered == 2 })
	actx, acancel := context.WithTimeout(ctx, 3*time.Second)
	defer acancel()
	err = m.Ack(actx)
	var se *client.ServerError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "not in flight") {
		t.Fatalf("late ack: %v, want the broker's \"not in flight\" answer", err)
	}
}

// Group state across a graceful restart (SIGTERM) then a crash (SIGKILL):
// acked records never come back, unacked ones do with their attempts
// counted, a nacked one's attempt survives a SIGTERM, and Consume-style
// consumers see the broker's goodbye as a disconnect.
func TestExploreQueueRestarts(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	args := []string{"--durable-stream", "default/default/jobs", "--durable-stream", "default/default/jobs.dlq",
		"--queue-max-attempts", "3"}
	p := startFelix(t, bin, addr, dataDir, args...)
	c := dialProc(t, addr, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range uint64(6) {
		if err := c.Publish(ctx, "default", "jobs", seq(i, 16)); err != nil {
			t.Fatal(err)
		}
	}
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(6))
	if err != nil {
		t.Fatal(err)
	}
	ms := map[uint64]*client.Message{}
	for len(ms) < 6 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ms[m.Offset] = m
	}
	for _, off := range []uint64{0, 1} {
		if err := ms[off].Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := ms[2].Nack(ctx, time.Hour); err != nil { // attempt 1 used, back in an hour
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("SIGTERM exit: %v\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not exit on SIGTERM")
	}
	ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = co.Next(ectx)
	ecancel()
	if !errors.Is(err, client.ErrDisconnected) || !strings.Contains(err.Error(), "broker shutting down") {
		t.Fatalf("consumer after SIGTERM: %v, want a disconnect that says the broker is shutting down", err)
	}
	c.Close()

	p = startFelix(t, bin, addr, dataDir, args...)
	c = dialProc(t, addr, dataDir)
	co, err = c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(6))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	for len(got) < 4 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[m.Offset] = m.Attempt
		// Close wrote every attempt count: each record was delivered
		// once before (offset 2's hour-long nack delay is not kept).
		if m.Offset < 2 || m.Attempt != 2 {
			t.Fatalf("after SIGTERM: offset %d attempt %d, want offsets 2-5 at attempt 2", m.Offset, m.Attempt)
		}
		if m.Offset == 4 {
			if err := m.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st, err := c.QueueStats(ctx, "default", "jobs", "g"); err != nil || st.InFlight != 3 || st.Lag != 3 || st.Acked != 1 {
		t.Fatalf("stats before SIGKILL: %+v %v", st, err)
	}
	p, c = killAndRestart(t, p, c, bin, addr, dataDir, args...)
	co, err = c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(6))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The crash may forget the counts of the last deliveries, never
		// the ones written at the SIGTERM.
		if m.Offset < 2 || m.Offset == 4 || m.Attempt < 2 {
			t.Fatalf("after SIGKILL: offset %d attempt %d", m.Offset, m.Attempt)
		}
	}
	ectx, ecancel = context.WithTimeout(ctx, time.Second)
	if m, err := co.Next(ectx); err == nil {
		t.Fatalf("unexpected delivery offset %d attempt %d", m.Offset, m.Attempt)
	}
	ecancel()
	if st, err := c.QueueStats(ctx, "default", "jobs", "g"); err != nil || st.InFlight != 3 || st.Lag != 3 || st.Acked != 0 {
		t.Fatalf("stats after SIGKILL: %+v %v", st, err)
	}
}

// Consumers join and leave mid-flight, ack, nack and hold records; the
// last attempt goes to the dead-letter stream. No record is held by two
// consumers at once, every record ends acked exactly once or dead-lettered
// exactly once (never both, never neither), and the stats add up.
func TestExploreQueueChurn(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{MaxAttempts: 4, BackoffMin: time.Millisecond},
		"default/default/jobs", "default/default/jobs.dlq")
	pub := dial(t, tb, client.Options{})
	const n = 3000
	publishSeq(t, pub, "jobs", 0, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var mu sync.Mutex
	holder := map[uint64]int{} // offset → worker holding it (seen, not yet given back)
	acked := map[uint64]int{}
	attempts := map[uint64]int{}
	var handled atomic.Int64
	var wg sync.WaitGroup
	for w := 1; w <= 4; w++ {
		c := dial(t, tb, client.Options{})
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for round := 0; ctx.Err() == nil && handled.Load() < n; round++ {
				co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(1+rng.IntN(16)))
				if err != nil {
					t.Errorf("worker %d join: %v", w, err)
					return
				}
				var held []*client.Message
				for k := 10 + rng.IntN(50); k > 0 && handled.Load() < n; k-- {
					nctx, ncancel := context.WithTimeout(ctx, 200*time.Millisecond)
					m, err := co.Next(nctx)
					ncancel()
					if err != nil {
						break
					}
					mu.Lock()
					if h, ok := holder[m.Offset]; ok {
						t.Errorf("offset %d delivered to worker %d while worker %d holds it", m.Offset, w, h)
					}
					if acked[m.Offset] > 0 {
						t.Errorf("offset %d delivered again after its ack", m.Offset)
					}
					if m.Attempt <= attempts[m.Offset] {
						t.Errorf("offset %d attempt %d after attempt %d", m.Offset, m.Attempt, attempts[m.Offset])
					}
					attempts[m.Offset] = m.Attempt
					holder[m.Offset] = w
					r := rng.IntN(10)
					if r < 8 {
						delete(holder, m.Offset)
					}
					mu.Unlock()
					switch {
					case r < 6:
						if err := m.Ack(ctx); err != nil {
							t.Errorf("ack %d: %v", m.Offset, err)
							continue
						}
						mu.Lock()
						acked[m.Offset]++
						mu.Unlock()
						handled.Add(1)
					case r < 8:
						if err := m.Nack(ctx, 0); err != nil {
							t.Errorf("nack %d: %v", m.Offset, err)
						}
					default:
						held = append(held, m)
					}
				}
				mu.Lock()
				for _, m := range held {
					delete(holder, m.Offset)
				}
				mu.Unlock()
				co.Close()
				// Count dead letters as handled.
				if st, err := c.QueueStats(ctx, "default", "jobs", "g"); err == nil && st.Acked+st.DeadLettered >= n {
					handled.Store(n)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("timed out: %d handled", handled.Load())
	}
	st := waitStats(t, "drained", func() queueStat { return queueStats(t, tb, "jobs", "g") },
		func(st queueStat) bool { return st.Acked+st.DeadLettered == n })
	if st.Lag != 0 || st.InFlight != 0 || st.Acked != uint64(len(acked)) {
		t.Fatalf("stats %+v, %d acked by the workers", st, len(acked))
	}
	dlq, err := pub.Subscribe(ctx, "default", "jobs.dlq", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	dead := map[uint64]bool{}
	for range st.DeadLettered {
		ev, err := dlq.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var rec wire.DeadLetter
		if err := json.Unmarshal(ev.Payload, &rec); err != nil {
			t.Fatal(err)
		}
		if dead[rec.Offset] || acked[rec.Offset] > 0 || rec.Attempts != 4 || binary.BigEndian.Uint64(rec.Payload) != rec.Offset {
			t.Fatalf("dead letter %+v (dead before %v, acked %d)", rec, dead[rec.Offset], acked[rec.Offset])
		}
		dead[rec.Offset] = true
	}
	for off := range uint64(n) {
		if acked[off]+btoi(dead[off]) != 1 {
			t.Fatalf("offset %d: acked %d times, dead-lettered %v", off, acked[off], dead[off])
		}
	}
	t.Logf("%d acked, %d dead-lettered, stats %+v", len(acked), len(dead), st)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A consumer that does not choose a name gets one from the broker; it must
// not be refused because another consumer chose that same name.
func TestExploreQueueAssignedNameNeverTaken(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/jobs")
	c := dial(t, tb, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The broker numbers the consumers it names (every join takes a
	// number): a consumer that chose the name the next join will get.
	taken, err := c.Consumer(ctx, "default", "jobs", "g", client.WithConsumerName("consumer-2"))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	anon, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatalf("a consumer without a name: %v", err)
	}
	defer anon.Close()
	if anon.Name() == taken.Name() {
		t.Fatalf("assigned name %q is taken", anon.Name())
	}
}

// A consumer whose application stops taking deliveries keeps a bounded
// backlog: copies redelivered after their ack timeout pile up only to a
// limit, the oldest (stale) ones are dropped and counted, and nothing is
// lost: once the application reads again, the record is still there to ack.
func TestExploreQueueBacklogIsBounded(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{AckTimeout: 5 * time.Millisecond, BackoffMin: time.Millisecond,
		BackoffMax: time.Millisecond, MaxAttempts: 100000}, "default/default/jobs")
	c := dial(t, tb, client.Options{RequestTimeout: 5 * time.Second})
	publishSeq(t, c, "jobs", 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads: the one record is redelivered every few milliseconds.
	for co.StaleDropped() < 50 {
		if ctx.Err() != nil {
			t.Fatalf("only %d stale copies dropped", co.StaleDropped())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Read until a copy that is in flight acks (a stale one's ack answers
	// "not in flight" unless the record is in flight to us again).
	for acked := false; !acked; {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != 0 {
			t.Fatalf("delivery of offset %d, want 0", m.Offset)
		}
		acked = m.Ack(ctx) == nil
	}
	st := queueStats(t, tb, "jobs", "g")
	if st.Acked != 1 || st.DeadLettered != 0 {
		t.Fatalf("stats %+v, want the record acked", st)
	}
}
