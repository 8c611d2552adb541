package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
)

// docs/semantics.md, queues: a nack's delay still running when the broker
// restarts is not kept, the record is ready at once; and an acked record
// is never redelivered. A consumer (through the lossy link) takes 12
// records of a durable stream (--fsync interval), acks four with Ack,
// nacks four with a one-minute delay and holds four; the broker is
// SIGKILLed, then (second round) stopped with SIGTERM. After each restart a
// new consumer gets exactly the eight records not acked (the nacked ones
// at once, not a minute later), with higher attempt counts, and never an
// acked one.
func TestHunt14NackDelayAcrossRestart(t *testing.T) {
	b := hunt14Start(t, "--durable-stream", "default/default/h14n:interval", "--queue-max-attempts", "-1")
	b.ready()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc := dialProc(t, b.addr, b.dataDir)
	for i := range uint64(12) {
		if err := pc.Publish(ctx, "default", "h14n", hunt7Payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	pc.Close()
	px := b.proxy(badLink)
	c := b.dialVia(px, shortIdle(2*time.Second))

	done := map[uint64]bool{} // acked with Ack returning nil
	lastAttempt := map[uint64]int{}
	for round, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		co := hunt14Join(t, ctx, c, "h14n", "g", client.WithPrefetch(12))
		want := 12 - len(done)
		got := map[uint64]*client.Message{}
		nctx, ncancel := context.WithTimeout(ctx, 5*time.Second) // far less than the nack delay
		for len(got) < want {
			m, err := co.Next(nctx)
			if err != nil {
				t.Fatalf("round %d: %d of %d records delivered (%v): the nacked ones were not ready at once after the restart?", round, len(got), want, err)
			}
			if done[m.Offset] {
				t.Errorf("round %d: offset %d delivered again after its Ack returned nil", round, m.Offset)
			}
			if m.Attempt <= lastAttempt[m.Offset] {
				t.Errorf("round %d: offset %d delivered with attempt %d after attempt %d", round, m.Offset, m.Attempt, lastAttempt[m.Offset])
			}
			lastAttempt[m.Offset] = m.Attempt
			got[m.Offset] = m
		}
		ncancel()
		// Settle: ack 4 (round 0) or 2 (round 1), nack 4 with a long delay, hold the rest.
		acks, nacks := 4, 4
		if round == 1 {
			acks = 2
		}
		for off, m := range got {
			switch {
			case acks > 0:
				if err := m.Ack(ctx); err != nil {
					t.Fatalf("ack %d: %v", off, err)
				}
				done[off] = true
				acks--
			case nacks > 0:
				if err := m.Nack(ctx, time.Minute); err != nil {
					t.Fatalf("nack %d: %v", off, err)
				}
				nacks--
			}
		}
		if err := b.stop(sig); err != nil && sig == syscall.SIGTERM {
			t.Errorf("broker after SIGTERM: %v", err)
		}
		co.Close()
		b.start()
	}
	// The last life: exactly the records never acked, each once.
	co := hunt14Join(t, ctx, c, "h14n", "g", client.WithPrefetch(12))
	defer co.Close()
	seen := map[uint64]bool{}
	nctx, ncancel := context.WithTimeout(ctx, 5*time.Second)
	defer ncancel()
	for len(seen) < 12-len(done) {
		m, err := co.Next(nctx)
		if err != nil {
			t.Fatalf("last life: %d of %d records delivered: %v", len(seen), 12-len(done), err)
		}
		if done[m.Offset] {
			t.Errorf("last life: offset %d delivered again after its Ack returned nil", m.Offset)
		}
		seen[m.Offset] = true
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// hunt14Join joins group on stream, retrying while the client reconnects.
func hunt14Join(t *testing.T, ctx context.Context, c *client.Client, stream, group string, opts ...client.ConsumerOption) *client.Consumer {
	t.Helper()
	for {
		jctx, jcancel := context.WithTimeout(ctx, 3*time.Second)
		co, err := c.Consumer(jctx, "default", stream, group, opts...)
		jcancel()
		if err == nil {
			return co
		}
		if ctx.Err() != nil {
			t.Fatalf("join %s: %v", group, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
