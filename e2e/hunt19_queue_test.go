package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/queue"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// hunt19Records publishes the mixed sizes then 20 records of 0-300 KiB
// (several to a read of commitlog.DefaultReadBytes, some cut by it) to
// stream through c, whose frame limit is hunt19LogFrame, and returns what
// was published, record i at offset i.
func hunt19Records(t *testing.T, ctx context.Context, c *client.Client, stream string) *hunt19Want {
	t.Helper()
	max := hunt19MaxEvent(t, hunt19LogFrame, stream)
	hunt19CrossesLogReads(t, max)
	sizes := hunt19Sizes(max)
	for i := range 20 {
		sizes = append(sizes, i*53*kib%(300*kib)+i)
	}
	want := &hunt19Want{}
	for i, size := range sizes {
		p := hunt19Payload(uint64(i), size)
		if err := c.Publish(ctx, "default", stream, p); err != nil {
			t.Fatalf("publish %d (%d bytes): %v", i, size, err)
		}
		want.add(p)
	}
	return want
}

// hunt19QueueBroker starts a broker whose durable streams are stream and
// its dead-letter stream, with group state in stateDir ("": in memory),
// and frame limit hunt19LogFrame.
func hunt19QueueBroker(t *testing.T, q server.QueueOptions, stateDir, stream string) *testbroker.Broker {
	t.Helper()
	q.TickInterval = 10 * time.Millisecond
	q.StateDir = stateDir
	return testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever},
			"default/default/"+stream, "default/default/"+stream+".dlq"),
		testbroker.WithServerOptions(server.Options{Queues: q, MaxFrameBytes: hunt19LogFrame}))
}

func hunt19GroupStats(t *testing.T, tb *testbroker.Broker, stream, group string) queue.Stats {
	t.Helper()
	st, ok := tb.Server.GroupStats("default", "default", stream, group)
	if !ok {
		t.Fatalf("no group %s on %s", group, stream)
	}
	return st
}

// A consumer group on a durable stream of records from 0 B to the largest
// a publish carries (above commitlog.MaxReadBuffer; about 14 MiB in all,
// far more than one stream read),
// prefetch 8: on its first delivery each record is acked, nacked at once,
// nacked with a delay, left to its ack timeout, or (every fifth, and the
// largest) nacked on every delivery until dead-lettered (4 attempts). A
// second consumer takes records and its connection is closed with them in
// flight. Every delivery is byte-exact; every record is acked exactly once
// or dead-lettered (the largest without its payload, which the dead-letter
// stream cannot carry in base64); the group's Lost stays 0.
func TestHunt19QueueLargeRecordsNackTimeoutKill(t *testing.T) {
	const stream, group, maxAttempts = "qbig", "g", 4
	tb := hunt19QueueBroker(t, server.QueueOptions{AckTimeout: time.Second, MaxAttempts: maxAttempts,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, "", stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	want := hunt19Records(t, ctx, pub, stream)
	n := len(want.sums)
	deadLetter := func(off uint64) bool { return off%5 == 4 || off == 6 } // 6: the largest record

	// The consumer killed with records in flight.
	killed := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	kco, err := killed.Consumer(ctx, "default", stream, group, client.WithPrefetch(4))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m, err := kco.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want.check(t, "killed consumer", int(m.Offset), m.Payload)
	}
	killed.Close()

	c := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	co, err := c.Consumer(ctx, "default", stream, group, client.WithPrefetch(8))
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	acked := make([]int, n)
	var st queue.Stats
	for {
		st = hunt19GroupStats(t, tb, stream, group)
		if st.Acked+st.DeadLettered == uint64(n) && st.InFlight == 0 && st.Pending == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("not done: stats %+v", st)
		}
		nctx, ncancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := co.Next(nctx)
		ncancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want.check(t, "consumer", int(m.Offset), m.Payload)
		switch {
		case deadLetter(m.Offset):
			err = m.Nack(ctx, 0)
		case m.Attempt > 1 || m.Offset%5 == 0:
			if err = m.Ack(ctx); err == nil {
				acked[m.Offset]++
			} else if strings.Contains(err.Error(), "not in flight") {
				err = nil // its ack timeout took it back first: redelivered
			}
		case m.Offset%5 == 1:
			err = m.Nack(ctx, 0)
		case m.Offset%5 == 2:
			err = m.Nack(ctx, 100*time.Millisecond)
		default: // 3: left to the ack timeout
		}
		if err != nil && !strings.Contains(err.Error(), "not in flight") {
			t.Fatalf("settle offset %d attempt %d: %v", m.Offset, m.Attempt, err)
		}
	}
	dead := 0
	for off, k := range acked {
		if deadLetter(uint64(off)) {
			dead++
			if k != 0 {
				t.Errorf("offset %d (always nacked) acked %d times", off, k)
			}
		} else if k != 1 {
			t.Errorf("offset %d acked %d times, want exactly once", off, k)
		}
	}
	if st.Lost != 0 || st.DeadLettered != uint64(dead) || st.Acked != uint64(n-dead) || st.Lag != 0 {
		t.Errorf("stats %+v: want Lost 0, DeadLettered %d, Acked %d", st, dead, n-dead)
	}
	t.Logf("stats: delivered %d, redelivered %d, timed out %d, reloaded %d, lost %d", st.Delivered, st.Redelivered, st.TimedOut, st.Reloaded, st.Lost)

	// The dead letters, in the dead-letter stream.
	dlc := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	sub, err := dlc.Subscribe(ctx, "default", stream+".dlq", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for range dead {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var dl wire.DeadLetter
		if err := json.Unmarshal(ev.Payload, &dl); err != nil {
			t.Fatalf("dead letter of %d bytes: %v", len(ev.Payload), err)
		}
		if !deadLetter(dl.Offset) || dl.Attempts != maxAttempts || dl.Group != group {
			t.Errorf("dead letter %+v", dl)
		}
		if dl.Payload == nil && want.sizes[dl.Offset] > 0 {
			if dl.Offset != 6 || !strings.Contains(dl.Reason, "omitted: too large for the dead-letter stream") {
				t.Errorf("dead letter of offset %d (%d bytes) without its payload: %q", dl.Offset, want.sizes[dl.Offset], dl.Reason)
			}
			continue
		}
		want.check(t, "dead letter", int(dl.Offset), dl.Payload)
	}
}

// Large records across a broker restart with the group's state on disk:
// before it a consumer (prefetch 16) acks a third of the records, nacks a
// third with a one-minute delay and holds the rest; after it a new
// consumer gets exactly the records not acked (the nacked ones at once),
// byte-exact, each once, and acks them; Lost stays 0.
func TestHunt19QueueLargeRecordsAcrossRestart(t *testing.T) {
	const stream, group = "qrst", "g"
	tb := hunt19QueueBroker(t, server.QueueOptions{AckTimeout: time.Minute, MaxAttempts: -1}, t.TempDir(), stream)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	want := hunt19Records(t, ctx, pub, stream)
	n := len(want.sums)

	c := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	co, err := c.Consumer(ctx, "default", stream, group, client.WithPrefetch(16))
	if err != nil {
		t.Fatal(err)
	}
	done := make([]bool, n)
	for range n {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want.check(t, "before restart", int(m.Offset), m.Payload)
		switch m.Offset % 3 {
		case 0:
			if err := m.Ack(ctx); err != nil {
				t.Fatalf("ack %d: %v", m.Offset, err)
			}
			done[m.Offset] = true
		case 1:
			if err := m.Nack(ctx, time.Minute); err != nil {
				t.Fatalf("nack %d: %v", m.Offset, err)
			}
		}
		if st := hunt19GroupStats(t, tb, stream, group); st.Cursor == uint64(n) && st.InFlight+st.Pending == n-countTrue(done) {
			break // every record delivered once: the rest are held or delayed
		}
	}
	st := hunt19GroupStats(t, tb, stream, group)
	t.Logf("before restart: %+v", st)
	if st.Lost != 0 {
		t.Errorf("lost %d before the restart", st.Lost)
	}
	co.Close()
	c.Close()
	tb.Restart()

	c2 := hunt19Dial(t, tb, hunt19LogFrame, client.Options{})
	co2, err := c2.Consumer(ctx, "default", stream, group, client.WithPrefetch(16))
	if err != nil {
		t.Fatal(err)
	}
	defer co2.Close()
	left := n - countTrue(done)
	nctx, ncancel := context.WithTimeout(ctx, 30*time.Second) // far less than the nack delay
	defer ncancel()
	for range left {
		m, err := co2.Next(nctx)
		if err != nil {
			t.Fatalf("after restart: %v (stats %+v)", err, hunt19GroupStats(t, tb, stream, group))
		}
		want.check(t, "after restart", int(m.Offset), m.Payload)
		if done[m.Offset] {
			t.Fatalf("offset %d delivered again after its ack", m.Offset)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatalf("ack %d: %v", m.Offset, err)
		}
		done[m.Offset] = true
	}
	st = hunt19GroupStats(t, tb, stream, group)
	if st.Lost != 0 || st.Floor != uint64(n) || st.InFlight != 0 || st.Pending != 0 {
		t.Errorf("after restart: stats %+v, want every record acked, none lost", st)
	}
}

func countTrue(bs []bool) int {
	k := 0
	for _, b := range bs {
		if b {
			k++
		}
	}
	return k
}
