package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/broker"
)

// stampBytes is the send-time and sequence header of every benchmark
// message (bench's payload header), sent in addition to the payload.
const stampBytes = 16

// latencyCase is one cell of the matrix.
type latencyCase struct{ fanout, batch, payload int }

// latencyMatrix is bench's default matrix (the reference's grid), batch
// varying slowest.
func latencyMatrix() []latencyCase {
	var cs []latencyCase
	for _, batch := range bench.DefaultMatrixBatches {
		for _, fanout := range bench.DefaultMatrixFanouts {
			for _, payload := range bench.DefaultMatrixPayloads {
				cs = append(cs, latencyCase{fanout, batch, payload})
			}
		}
	}
	return cs
}

// runLatency: the reference's latency matrix, short, through the bench
// harness (bench.RunPubSub with a bench.FelixTarget).
func runLatency(ctx context.Context, e *env) error {
	msgs1, msgs64 := 2000, 6400 // measured messages at batch 1 and batch 64
	if e.opts.Quick {
		msgs1, msgs64 = 100, 256
	}
	n := needs{
		streams:    []string{"default/default/bench"},
		broker:     broker.Options{QueuePolicy: broker.Block, QueueCapacity: 4096},
		serveFlags: []string{"--queue-policy block"},
	}
	if err := e.startBroker(n); err != nil {
		return err
	}
	e.notef("Subscriber queues block (lossless): a full queue makes the publisher wait, so every message must arrive.")

	e.stepf("Running %d cases: fanout {1,10} × batch {1,64} × payload {0,256,1024,4096} B.", len(latencyMatrix()))
	e.notef("One publisher; the subscribers share one event connection (as the reference's latency demo).")
	e.notef("Batch 1: each publish waits for the broker's ack (latency profile), %d messages after %d warm-up.", msgs1, max(msgs1/10, 1))
	e.notef("Batch 64: fire-and-forget batches (throughput profile), %d messages after %d warm-up;", msgs64, max(msgs64/10, 64))
	e.notef("  its latency is queueing delay in a burst, NOT per-message latency.")
	e.notef("Latency = receive time − send time, stamped in the first %d bytes of each message (sent on top of the payload).", stampBytes)
	e.printf("\n   %6s %5s %7s | %10s %10s %10s | %14s %6s\n", "fanout", "batch", "payload", "p50", "p99", "p999", "delivered/s", "lost")
	cases, clean := 0, 0
	for _, c := range latencyMatrix() {
		total := msgs1
		if c.batch > 1 {
			total = msgs64
		}
		warmup := max(total/10, c.batch)
		target := &bench.FelixTarget{Addr: e.b.addr, TLS: e.b.tls, Acked: c.batch == 1, SharedConn: true}
		res, err := bench.RunPubSub(ctx, target, bench.PubSubConfig{
			Fanout: c.fanout, Batch: c.batch, PayloadSize: c.payload + stampBytes,
			Warmup: warmup, Total: total, Timeout: 20 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("case fanout %d batch %d payload %d: %w", c.fanout, c.batch, c.payload, err)
		}
		cases++
		if res.Lost == 0 && res.Duplicates == 0 && res.OutOfOrder == 0 && res.Invalid == 0 {
			clean++
		}
		l := res.Latency
		e.printf("   %6d %5d %5d B | %10s %10s %10s | %14.0f %6d\n", c.fanout, c.batch, c.payload,
			fmtLatency(l.P50), fmtLatency(l.P99), fmtLatency(l.P999), res.DeliveredMsgsPerSec, res.Lost)
	}
	e.check(clean == cases, "%d/%d cases delivered every message to every subscriber: 0 lost, 0 duplicated, 0 out of order", clean, cases)
	e.notef("Numbers from one short run on this machine; `felix bench` measures longer runs side by side with NATS.")
	return nil
}
