package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// PubSubConfig describes one RunPubSub case. The zero value is a valid case:
// fanout 1, 256-byte payloads, single publishes, 10 000 messages as fast as
// possible, no warm-up.
type PubSubConfig struct {
	// Fanout is the number of subscribers; every message goes to each.
	// Default 1.
	Fanout int `json:"fanout"`
	// PayloadSize is the size of each message in bytes, at least 16 (the
	// send timestamp and sequence number header). Default 256.
	PayloadSize int `json:"payload_size"`
	// Batch is the number of messages per Publish call. Default 1.
	Batch int `json:"batch"`
	// Warmup messages are published (at Rate) and delivered before the
	// measured ones; they count for loss but not for latency or throughput.
	// Default 0.
	Warmup int `json:"warmup"`
	// Total is the number of measured messages. Default 10 000. Warmup +
	// Total is at most 2^26, and Fanout × that at most 2^30.
	Total int `json:"total"`
	// Rate is the publish rate in messages per second (latency mode);
	// 0 publishes as fast as possible (throughput mode). Default 0.
	Rate int `json:"rate"`
	// Timeout caps the whole run, setup to drain. Default 60 s.
	Timeout time.Duration `json:"timeout_ns"`
	// DrainTimeout is how long to wait, after the last publish is flushed,
	// for the deliveries still expected; what has not arrived by then is
	// Lost. Default 5 s.
	DrainTimeout time.Duration `json:"drain_timeout_ns"`
	// Pacing is how the publisher waits for scheduled send times in
	// latency mode. Default PaceSleep.
	Pacing Pacing `json:"pacing"`
}

// Defaults for a zero PubSubConfig.
const (
	DefaultPayloadSize  = 256
	DefaultTotal        = 10_000
	DefaultTimeout      = 60 * time.Second
	DefaultDrainTimeout = 5 * time.Second
)

// Memory bounds of the loss tracker, which keeps a send time (8 bytes) per
// message and a bit per message per subscriber: at most 512 MiB + 128 MiB.
const (
	maxMessages   = 1 << 26 // Warmup + Total
	maxDeliveries = 1 << 30 // Fanout × (Warmup + Total)
)

// withDefaults fills zero fields and validates the rest.
func (c PubSubConfig) withDefaults() (PubSubConfig, error) {
	if c.Fanout == 0 {
		c.Fanout = 1
	}
	if c.PayloadSize == 0 {
		c.PayloadSize = DefaultPayloadSize
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.Total == 0 {
		c.Total = DefaultTotal
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	switch {
	case c.Fanout < 0, c.Batch < 0, c.Total < 0, c.Warmup < 0, c.Rate < 0,
		c.Timeout < 0, c.DrainTimeout < 0:
		return c, fmt.Errorf("bench: negative value in config %+v", c)
	case c.Pacing < 0 || int(c.Pacing) >= len(pacingNames):
		return c, fmt.Errorf("bench: unknown pacing %d", int(c.Pacing))
	case c.PayloadSize < payloadHeaderSize:
		return c, fmt.Errorf("bench: payload size %d is below the %d-byte header", c.PayloadSize, payloadHeaderSize)
	case c.Warmup+c.Total > maxMessages:
		return c, fmt.Errorf("bench: %d messages is over the harness's %d", c.Warmup+c.Total, maxMessages)
	case float64(c.Fanout)*float64(c.Warmup+c.Total) > maxDeliveries:
		return c, fmt.Errorf("bench: fanout %d × %d messages is over %d deliveries", c.Fanout, c.Warmup+c.Total, int64(maxDeliveries))
	}
	return c, nil
}

// PubSubResult is the outcome of one RunPubSub case.
//
// Counts (Published, Expected, Delivered, Lost, Duplicates, OutOfOrder)
// cover the whole run, warm-up included. Latency and the rates cover the
// measured messages only.
type PubSubResult struct {
	Target string       `json:"target"`
	Config PubSubConfig `json:"config"` // with defaults filled in
	// Latency is receive time − send time over every measured delivery at
	// every subscriber. In latency mode (Rate > 0) the send time is the
	// scheduled one (see RunPubSub).
	Latency Summary `json:"latency"`
	// UncorrectedLatency is receive time − actual send time: what the
	// target alone added, without the publisher's lateness. It hides the
	// delays a stalled target imposes on messages not yet sent (coordinated
	// omission), so it is for diagnosis next to Latency, never instead of
	// it. Equal to Latency in throughput mode.
	UncorrectedLatency Summary `json:"uncorrected_latency"`
	// SendLag is actual − scheduled publish time, latency mode only: how
	// late the publisher was; it is included in Latency.
	SendLag   Summary `json:"send_lag"`
	Published int64   `json:"published"`
	Expected  int64   `json:"expected"`  // Published × Fanout
	Delivered int64   `json:"delivered"` // distinct (subscriber, message) deliveries
	Lost      int64   `json:"lost"`      // Expected − Delivered; 0 in a lossless run
	// Duplicates counts deliveries of a message a subscriber already had.
	Duplicates int64 `json:"duplicates"`
	// OutOfOrder counts deliveries with a lower sequence number than one the
	// subscriber already had.
	OutOfOrder int64 `json:"out_of_order"`
	// Invalid counts deliveries that were not the harness's payloads (too
	// short, unknown sequence or subscriber).
	Invalid int64 `json:"invalid"`
	// Duration runs from the first measured publish to the last measured
	// delivery (or to the end of the drain when nothing arrived).
	Duration time.Duration `json:"duration_ns"`
	// DeliveredMsgsPerSec is measured distinct deliveries / Duration, all
	// subscribers together; DeliveredMBPerSec is that × PayloadSize in 10^6
	// bytes per second.
	DeliveredMsgsPerSec float64 `json:"delivered_msgs_per_sec"`
	DeliveredMBPerSec   float64 `json:"delivered_mb_per_sec"`
	// PublishedMsgsPerSec is Total / (first measured publish to the end of
	// the Flush that follows the last).
	PublishedMsgsPerSec float64 `json:"published_msgs_per_sec"`
}

// RunPubSub measures target with one publisher and cfg.Fanout subscribers.
// It calls target.Setup, publishes cfg.Warmup messages and waits for their
// delivery (up to DrainTimeout), publishes cfg.Total measured messages,
// flushes, waits until every expected delivery has arrived or DrainTimeout
// has passed, and closes the target.
//
// Latency mode (cfg.Rate > 0) paces by absolute schedule: message i of a
// phase is due at start + i/Rate (a batch at the due time of its first
// message), and its latency is measured from that scheduled time, not from
// when it was actually sent. A publisher that falls behind (a stall in the
// target's Publish, a late wake-up) therefore shows up in the latency of
// every message it delayed instead of silently sending fewer messages
// during the stall: the harness avoids coordinated omission. Throughput
// mode (Rate 0) stamps each batch just before its Publish call.
//
// It returns an error, together with the result so far, when setup,
// publishing or flushing fails or cfg.Timeout (or ctx) ends the run before
// the last publish. Missing deliveries are not an error: they are Lost.
func RunPubSub(ctx context.Context, target PubSubTarget, cfg PubSubConfig) (res PubSubResult, err error) {
	cfg, err = cfg.withDefaults()
	res = PubSubResult{Target: target.Name(), Config: cfg}
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	clk := newClock()
	published := uint64(cfg.Warmup + cfg.Total)
	tr := newTracker(clk, cfg.Fanout, uint64(cfg.Warmup), published)
	closeTarget, err := setUp(target, func() error { return target.Setup(ctx, cfg.Fanout, tr.deliver) })
	if err != nil {
		return res, err
	}
	defer closeTarget(&err)

	p := &publisher{target: target, cfg: cfg, clk: clk, tr: tr, payloads: newPayloads(cfg.Batch, cfg.PayloadSize), lag: NewHistogram()}
	fanout := int64(cfg.Fanout)

	if cfg.Warmup > 0 {
		tr.expect(int64(cfg.Warmup) * fanout)
		if _, _, err := p.run(ctx, 0, cfg.Warmup, false); err != nil {
			return finish(res, tr, p, -1, -1, clk.now()), err
		}
		drainWait(ctx, tr, cfg.DrainTimeout)
	}

	tr.expect(int64(published) * fanout)
	start, pubEnd, err := p.run(ctx, uint64(cfg.Warmup), cfg.Total, true)
	if err != nil {
		return finish(res, tr, p, start, -1, clk.now()), err
	}
	drainWait(ctx, tr, cfg.DrainTimeout)
	return finish(res, tr, p, start, pubEnd, clk.now()), nil
}

// drainWait waits for the tracker's expected deliveries, at most d (and
// never past ctx).
func drainWait(ctx context.Context, tr *tracker, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tr.wait(ctx.Done())
}

// finish stops the tracker and fills res. start and pubEnd are clock ns of
// the first measured publish and of the end of the final flush (-1 if the
// run did not get there); end is when the run stopped waiting.
func finish(res PubSubResult, tr *tracker, p *publisher, start, pubEnd, end int64) PubSubResult {
	tot := tr.stop()
	cfg := res.Config
	res.Latency = tot.latency.Summary()
	res.UncorrectedLatency = tot.uncorrected.Summary()
	res.SendLag = p.lag.Summary()
	res.Published = int64(p.sent)
	res.Expected = res.Published * int64(cfg.Fanout)
	res.Delivered = tot.distinct
	res.Lost = res.Expected - res.Delivered
	res.Duplicates = tot.dups
	res.OutOfOrder = tot.ooo
	res.Invalid = tot.invalid
	last := end
	if tot.measured > 0 {
		last = tot.lastRecv
	}
	if start >= 0 && last > start {
		res.Duration = time.Duration(last - start)
		res.DeliveredMsgsPerSec = float64(tot.measured) / res.Duration.Seconds()
		res.DeliveredMBPerSec = res.DeliveredMsgsPerSec * float64(cfg.PayloadSize) / 1e6
	}
	if start >= 0 && pubEnd > start {
		res.PublishedMsgsPerSec = float64(cfg.Total) / time.Duration(pubEnd-start).Seconds()
	}
	return res
}

// publisher publishes one phase of a run from the calling goroutine.
type publisher struct {
	target   PubSubTarget
	cfg      PubSubConfig
	clk      clock
	tr       *tracker // for actual send times
	payloads [][]byte
	sent     uint64     // messages Publish accepted, all phases
	lag      *Histogram // actual − scheduled send, measured phase, latency mode
	pace     paceEstimate
}

// run publishes n messages with sequence numbers from first, then flushes.
// It returns the clock times of the first publish and of the flush's return
// (-1 if it failed before).
func (p *publisher) run(ctx context.Context, first uint64, n int, measured bool) (start, end int64, err error) {
	var pc *pacer
	if p.cfg.Rate > 0 {
		pc = newPacer(p.clk, p.cfg.Pacing, &p.pace)
		defer pc.close()
	}
	// Interval in ns as a float: 1e9/Rate need not be whole.
	interval := 0.0
	if p.cfg.Rate > 0 {
		interval = 1e9 / float64(p.cfg.Rate)
	}
	start = p.clk.now()
	for i := 0; i < n; i += p.cfg.Batch {
		if err := ctx.Err(); err != nil {
			return start, -1, fmt.Errorf("bench: %s: stopped after publishing %d of %d messages: %w",
				p.target.Name(), p.sent, p.cfg.Warmup+p.cfg.Total, context.Cause(ctx))
		}
		k := min(p.cfg.Batch, n-i)
		var stamp int64
		if pc != nil {
			stamp = start + int64(math.Round(float64(i)*interval))
			pc.waitUntil(stamp)
		} else {
			stamp = p.clk.now()
		}
		batch := p.payloads[:k]
		sentAt := stamp
		if pc != nil {
			sentAt = p.clk.now()
			if measured {
				p.lag.Record(time.Duration(sentAt - stamp))
			}
		}
		for j, pl := range batch {
			seq := first + uint64(i+j)
			stampPayload(pl, stamp, seq)
			p.tr.sentAt[seq].Store(sentAt)
		}
		if err := p.target.Publish(ctx, batch); err != nil {
			return start, -1, fmt.Errorf("bench: %s: publish message %d: %w", p.target.Name(), first+uint64(i), err)
		}
		p.sent += uint64(k)
	}
	if err := p.target.Flush(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (config Timeout %s)", err, p.cfg.Timeout)
		}
		return start, -1, fmt.Errorf("bench: %s: flush: %w", p.target.Name(), err)
	}
	return start, p.clk.now(), nil
}
