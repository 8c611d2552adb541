package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chanTarget is test scaffolding for the harness itself: an in-process
// "broker" that copies each published payload into every subscriber's
// channel, with faults injected per subscriber and sequence number.
type chanTarget struct {
	// fault decides what happens to message seq at subscriber sub; nil
	// delivers everything once, in order.
	fault func(sub int, seq uint64) fault
	// blockPublish makes Publish wait for ctx: a stalled target.
	blockPublish bool
	setupErr     error

	subs      []chan []byte
	wg        sync.WaitGroup
	publishes atomic.Int64
	closed    atomic.Int64
}

type fault int

const (
	deliverOnce fault = iota
	drop
	duplicate
	holdForNext // deliver after the next message: one reordering
)

func (c *chanTarget) Name() string { return "chan" }

func (c *chanTarget) Setup(_ context.Context, subscribers int, deliver func(int, []byte)) error {
	if c.setupErr != nil {
		return c.setupErr
	}
	c.subs = make([]chan []byte, subscribers)
	for i := range c.subs {
		ch := make(chan []byte, 1<<16)
		c.subs[i] = ch
		c.wg.Go(func() {
			var held []byte
			for p := range ch {
				_, seq, _ := readPayload(p)
				f := deliverOnce
				if c.fault != nil {
					f = c.fault(i, seq)
				}
				switch f {
				case drop:
					continue
				case holdForNext:
					held = p
					continue
				case duplicate:
					deliver(i, p)
				}
				deliver(i, p)
				if held != nil {
					deliver(i, held)
					held = nil
				}
			}
			if held != nil {
				deliver(i, held)
			}
		})
	}
	return nil
}

func (c *chanTarget) Publish(ctx context.Context, payloads [][]byte) error {
	c.publishes.Add(1)
	if c.blockPublish {
		<-ctx.Done()
		return ctx.Err()
	}
	for _, p := range payloads {
		for _, ch := range c.subs {
			ch <- append([]byte(nil), p...)
		}
	}
	return nil
}

func (c *chanTarget) Flush(context.Context) error { return nil }

func (c *chanTarget) Close() error {
	c.closed.Add(1)
	for _, ch := range c.subs {
		close(ch)
	}
	c.subs = nil
	c.wg.Wait()
	return nil
}

func TestRunPubSubCleanRun(t *testing.T) {
	tgt := &chanTarget{}
	cfg := PubSubConfig{Fanout: 3, PayloadSize: 64, Warmup: 100, Total: 1000, Batch: 7}
	res, err := RunPubSub(context.Background(), tgt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 1100 || res.Expected != 3300 || res.Delivered != 3300 || res.Lost != 0 {
		t.Fatalf("published %d expected %d delivered %d lost %d", res.Published, res.Expected, res.Delivered, res.Lost)
	}
	if res.Duplicates != 0 || res.OutOfOrder != 0 || res.Invalid != 0 {
		t.Fatalf("dups %d ooo %d invalid %d", res.Duplicates, res.OutOfOrder, res.Invalid)
	}
	if res.Latency.Count != 3000 || res.UncorrectedLatency.Count != 3000 {
		t.Fatalf("latency counts %d and %d, want 3000 (warm-up excluded)", res.Latency.Count, res.UncorrectedLatency.Count)
	}
	// ceil(100/7) + ceil(1000/7) batches.
	if n := tgt.publishes.Load(); n != 15+143 {
		t.Fatalf("%d Publish calls, want %d", n, 15+143)
	}
	if tgt.closed.Load() != 1 {
		t.Fatalf("Close called %d times", tgt.closed.Load())
	}
	if res.Duration <= 0 || res.DeliveredMsgsPerSec <= 0 || res.PublishedMsgsPerSec <= 0 {
		t.Fatalf("duration %v delivered/s %v published/s %v", res.Duration, res.DeliveredMsgsPerSec, res.PublishedMsgsPerSec)
	}
	if want := res.DeliveredMsgsPerSec * 64 / 1e6; res.DeliveredMBPerSec != want {
		t.Fatalf("MB/s %v, want %v", res.DeliveredMBPerSec, want)
	}
	if res.SendLag.Count != 0 {
		t.Fatalf("send lag recorded in throughput mode: %+v", res.SendLag)
	}
	if res.Config.Timeout != DefaultTimeout || res.Config.DrainTimeout != DefaultDrainTimeout {
		t.Fatalf("defaults not filled in: %+v", res.Config)
	}
}

func TestRunPubSubDetectsLossDuplicatesAndReordering(t *testing.T) {
	const warmup, total = 200, 2000
	tgt := &chanTarget{fault: func(sub int, seq uint64) fault {
		switch {
		case sub == 0 && seq%100 == 7:
			return drop
		case sub == 1 && seq%50 == 3:
			return duplicate
		case sub == 2 && seq%40 == 10:
			return holdForNext
		}
		return deliverOnce
	}}
	cfg := PubSubConfig{Fanout: 3, Warmup: warmup, Total: total, DrainTimeout: 200 * time.Millisecond}
	res, err := RunPubSub(context.Background(), tgt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var drops, measuredDrops, dups, swaps int64
	for seq := range uint64(warmup + total) {
		if seq%100 == 7 {
			drops++
			if seq >= warmup {
				measuredDrops++
			}
		}
		if seq%50 == 3 {
			dups++
		}
		if seq%40 == 10 {
			swaps++
		}
	}
	if res.Lost != drops || res.Delivered != res.Expected-drops {
		t.Errorf("lost %d delivered %d of %d, want %d lost", res.Lost, res.Delivered, res.Expected, drops)
	}
	if res.Duplicates != dups {
		t.Errorf("duplicates %d, want %d", res.Duplicates, dups)
	}
	if res.OutOfOrder != swaps {
		t.Errorf("out of order %d, want %d", res.OutOfOrder, swaps)
	}
	if want := 3*int64(total) - measuredDrops; res.Latency.Count != want {
		t.Errorf("latency count %d, want %d", res.Latency.Count, want)
	}
}

func TestRunPubSubFixedRate(t *testing.T) {
	const rate, total = 2000, 400 // 200 ms of schedule
	for _, pacing := range []Pacing{PaceSleep, PaceAdaptive, PaceSpin} {
		t.Run(pacing.String(), func(t *testing.T) {
			cfg := PubSubConfig{Fanout: 2, Rate: rate, Total: total, Warmup: 20, Pacing: pacing}
			res, err := RunPubSub(context.Background(), &chanTarget{}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Not a timing assertion beyond "the schedule was not skipped".
			if min := time.Duration(float64(total) / rate * 0.5 * float64(time.Second)); res.Duration < min {
				t.Fatalf("run took %v, want at least %v at %d/s", res.Duration, min, rate)
			}
			if res.Lost != 0 || res.Latency.Count != 2*total {
				t.Fatalf("lost %d latency count %d", res.Lost, res.Latency.Count)
			}
			if res.SendLag.Count != total {
				t.Fatalf("send lag count %d, want %d", res.SendLag.Count, total)
			}
			// Each message is sent at or after its scheduled time, so latency
			// from the actual send can never exceed latency from the schedule.
			u, l := res.UncorrectedLatency, res.Latency
			if u.Count != l.Count || u.P50 > l.P50 || u.Max > l.Max {
				t.Fatalf("uncorrected %v exceeds corrected %v", u, l)
			}
		})
	}
}

func TestRunPubSubTimeoutStopsStalledTarget(t *testing.T) {
	tgt := &chanTarget{blockPublish: true}
	start := time.Now()
	res, err := RunPubSub(context.Background(), tgt, PubSubConfig{Total: 10, Timeout: 100 * time.Millisecond})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("stalled run took %v", took)
	}
	if res.Published != 0 || tgt.closed.Load() != 1 {
		t.Fatalf("published %d, closed %d times", res.Published, tgt.closed.Load())
	}
}

func TestRunPubSubSetupError(t *testing.T) {
	tgt := &chanTarget{setupErr: errors.New("no broker")}
	_, err := RunPubSub(context.Background(), tgt, PubSubConfig{})
	if err == nil || !strings.Contains(err.Error(), "no broker") {
		t.Fatalf("err = %v", err)
	}
	if tgt.closed.Load() != 1 {
		t.Fatalf("Close called %d times after failed Setup", tgt.closed.Load())
	}
}

func TestRunPubSubRejectsBadConfig(t *testing.T) {
	for _, cfg := range []PubSubConfig{
		{PayloadSize: 8},
		{Fanout: -1},
		{Rate: -5},
		{Fanout: 1 << 10, Total: 1 << 21},
		{Total: 1 << 27},
		{Pacing: 9},
	} {
		if _, err := RunPubSub(context.Background(), &chanTarget{}, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestTrackerIgnoresForeignDeliveries(t *testing.T) {
	tr := newTracker(newClock(), 2, 0, 10)
	tr.deliver(5, make([]byte, 16)) // unknown subscriber
	tr.deliver(0, []byte("short"))  // not a harness payload
	p := make([]byte, 16)
	stampPayload(p, 0, 10) // sequence out of range
	tr.deliver(1, p)
	tot := tr.stop()
	if tot.invalid != 3 || tot.distinct != 0 {
		t.Fatalf("invalid %d distinct %d, want 3 and 0", tot.invalid, tot.distinct)
	}
	stampPayload(p, 0, 1)
	tr.deliver(1, p) // after stop: ignored
	if tot := tr.stop(); tot.distinct != 0 {
		t.Fatalf("delivery after stop was counted")
	}
}
