package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// QueueTarget is a work queue under test: Felix consumer groups, NATS
// JetStream work-queue consumers, or anything where every published record
// goes to one of several consumers, which acks it.
//
// RunQueue calls Setup once, then Consume once per consumer (each on its
// own goroutine) and Publish and Flush from one publishing goroutine, and
// Close once at the end.
type QueueTarget interface {
	// Name labels the target in reports ("felix", "nats-js", ...).
	Name() string
	// Describe says how consumers ack and how records are stored, for a
	// note under the table.
	Describe() string
	// Setup connects the publisher and cfg.Consumers consumers (one
	// connection each) and creates what the queue needs. cfg has its
	// defaults filled in.
	Setup(ctx context.Context, cfg QueueConfig) error
	// Publish publishes payloads. It may return before the system has
	// acknowledged them, keeping at most cfg.PublishWindow records
	// unacknowledged; Flush waits for the rest. It may keep the payloads
	// until Flush returns (the runner never reuses them).
	Publish(ctx context.Context, payloads [][]byte) error
	// Flush returns once every record published so far has been
	// acknowledged by the system, with the first publish error if any.
	Flush(ctx context.Context) error
	// Consume runs consumer i until ctx ends, then returns nil (or an
	// error that stopped it earlier). For every delivery it acks the
	// record and then calls acked with the payload, whether it is a
	// redelivery, and the ack's error. acked is called from one goroutine
	// per consumer.
	Consume(ctx context.Context, i int, acked func(payload []byte, redelivered bool, ackErr error)) error
	// Close releases everything Setup created.
	Close() error
}

// Defaults for a zero QueueConfig.
const (
	DefaultQueueRecords       = 50_000
	DefaultQueueConsumers     = 4
	DefaultQueuePayloadSize   = 256
	DefaultQueuePublishBatch  = 64
	DefaultQueuePublishWindow = 256
	DefaultQueuePrefetch      = 64
	DefaultQueueTimeout       = 2 * time.Minute
	// queueHeaderSize is the payload header: send time and sequence (the
	// harness's usual 16 bytes), then the run id.
	queueHeaderSize = payloadHeaderSize + 8
	maxQueueRecords = 1 << 24
	maxQueueBytes   = 4 << 30 // every record's payload is allocated up front
)

// QueueConfig describes one RunQueue case. The zero value is a valid case:
// 50 000 measured records of 256 bytes, no warm-up, 4 consumers with a
// prefetch of 64, batches of 64 with 256 records in flight.
type QueueConfig struct {
	// Records is the number of measured records. Default 50 000.
	Records int `json:"records"`
	// Warmup records are published and acked first, not measured.
	// Default 0.
	Warmup int `json:"warmup"`
	// Consumers is the number of consumers, each on its own connection,
	// sharing one consumer group. Default 4.
	Consumers int `json:"consumers"`
	// PayloadSize is each record's size in bytes, at least 24 (send time,
	// sequence and run id). Default 256.
	PayloadSize int `json:"payload_size"`
	// PublishBatch is the number of records per Publish call, all stamped
	// with the same send time. Default 64.
	PublishBatch int `json:"publish_batch"`
	// PublishWindow bounds the records published but not yet acknowledged
	// by the system (at least PublishBatch). Default 256.
	PublishWindow int `json:"publish_window"`
	// Prefetch bounds each consumer's deliveries not yet acked. Default 64.
	Prefetch int `json:"prefetch"`
	// Rate, when > 0, publishes on a fixed schedule of Rate records per
	// second (a batch is due at its first record's time, slept for) and
	// measures latency from the scheduled time, so a publisher held up by
	// the target does not hide the delay (no coordinated omission). 0
	// (default) publishes as fast as the target accepts, so latency then
	// includes the time records wait behind the backlog.
	Rate int `json:"rate"`
	// Timeout caps the whole run, setup to close. Default 2 minutes.
	Timeout time.Duration `json:"timeout_ns"`
}

func (c QueueConfig) withDefaults() (QueueConfig, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Records, DefaultQueueRecords)
	def(&c.Consumers, DefaultQueueConsumers)
	def(&c.PayloadSize, DefaultQueuePayloadSize)
	def(&c.PublishBatch, DefaultQueuePublishBatch)
	def(&c.PublishWindow, max(DefaultQueuePublishWindow, c.PublishBatch))
	def(&c.Prefetch, DefaultQueuePrefetch)
	if c.Timeout == 0 {
		c.Timeout = DefaultQueueTimeout
	}
	switch {
	case c.Records < 0 || c.Warmup < 0 || c.Records+c.Warmup > maxQueueRecords:
		return c, fmt.Errorf("bench: queue records %d + warm-up %d: want 0..%d", c.Records, c.Warmup, maxQueueRecords)
	case c.Consumers < 0, c.Prefetch < 0, c.PublishBatch < 0, c.Rate < 0, c.Timeout < 0:
		return c, errors.New("bench: queue config: consumers, prefetch, publish batch, rate and timeout must not be negative")
	case c.PayloadSize < queueHeaderSize || c.PayloadSize > 16<<20:
		return c, fmt.Errorf("bench: queue payload size %d: want %d..%d", c.PayloadSize, queueHeaderSize, 16<<20)
	case int64(c.Records+c.Warmup)*int64(c.PayloadSize) > maxQueueBytes:
		return c, fmt.Errorf("bench: queue records × payload size is over %d bytes", int64(maxQueueBytes))
	case c.PublishWindow < c.PublishBatch:
		return c, fmt.Errorf("bench: queue publish window %d is smaller than the batch %d", c.PublishWindow, c.PublishBatch)
	}
	return c, nil
}

// QueueResult is one RunQueue case. A correct run has Lost, Duplicates,
// AckErrors and Invalid all 0.
type QueueResult struct {
	Target   string      `json:"target"`
	Describe string      `json:"describe"` // the target's ack and storage modes
	Config   QueueConfig `json:"config"`   // with defaults filled in
	// Latency is, for every measured record, the time from its stamped
	// send time (just before the Publish call that carried it) to the
	// return of the consumer's successful ack call.
	Latency Summary `json:"latency"`
	// Published counts records Publish accepted, warm-up included.
	Published int64 `json:"published"`
	// Acked counts distinct records acked successfully, warm-up included.
	Acked int64 `json:"acked"`
	// Lost is Published − Acked: records never acked before the run ended.
	Lost int64 `json:"lost"`
	// Duplicates counts successful acks of a record already acked.
	Duplicates int64 `json:"duplicates"`
	// Redelivered counts deliveries the system marked as redeliveries.
	Redelivered int64 `json:"redelivered"`
	// AckErrors counts ack calls that failed.
	AckErrors int64 `json:"ack_errors"`
	// Invalid counts deliveries that were not this run's records (too
	// short, another run's, or an unknown sequence).
	Invalid int64 `json:"invalid"`
	// Duration runs from the first measured publish to the last measured
	// ack.
	Duration time.Duration `json:"duration_ns"`
	// AckedPerSec is measured distinct acks / Duration, all consumers
	// together.
	AckedPerSec float64 `json:"acked_per_sec"`
	// PublishedPerSec is Records / (first measured publish to the return
	// of the Flush after the last).
	PublishedPerSec float64 `json:"published_per_sec"`
	// FirstAckError is the first failed ack's error, if any.
	FirstAckError string `json:"first_ack_error,omitempty"`
}

// RunQueue measures target: it sets it up, starts cfg.Consumers
// consumers, publishes cfg.Warmup records and waits until all are acked,
// then publishes cfg.Records measured records as fast as the target
// accepts them (cfg.PublishWindow in flight) or at cfg.Rate, flushes, and
// waits until every record is acked. Each payload starts with its send time, a
// sequence number and a random run id, so every ack is checked: a record
// acked twice is a duplicate, one never acked is lost.
//
// It returns an error, with the result so far, when setup, publishing, a
// consumer or cfg.Timeout (or ctx) ends the run before every record was
// acked.
func RunQueue(ctx context.Context, target QueueTarget, cfg QueueConfig) (res QueueResult, err error) {
	cfg, err = cfg.withDefaults()
	res = QueueResult{Target: target.Name(), Describe: target.Describe(), Config: cfg}
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	total := cfg.Warmup + cfg.Records
	tr := newQueueTracker(newClock(), cfg)
	closeTarget, err := setUp(target, func() error { return target.Setup(ctx, cfg) })
	if err != nil {
		return res, err
	}
	defer closeTarget(&err)

	cctx, stopConsumers := context.WithCancel(ctx)
	failed := make(chan error, cfg.Consumers)
	var wg sync.WaitGroup
	for i := range cfg.Consumers {
		wg.Go(func() {
			err := target.Consume(cctx, i, tr.consumer(i))
			if cctx.Err() == nil {
				failed <- fmt.Errorf("consumer %d stopped: %w", i, cmp.Or(err, errors.New("no error")))
			}
		})
	}
	defer func() {
		stopConsumers()
		wg.Wait()
	}()

	p := &queuePublisher{target: target, cfg: cfg, tr: tr, payloads: newPayloads(total, cfg.PayloadSize)}
	phase := func(first, n int) (start, end int64, err error) {
		start, end, err = p.run(ctx, first, n)
		if err == nil {
			err = tr.waitAcked(ctx, int64(first+n), failed)
		}
		return start, end, err
	}
	if cfg.Warmup > 0 {
		if _, _, err := phase(0, cfg.Warmup); err != nil {
			return tr.finish(res, p.sent, -1, -1), fmt.Errorf("bench: %s warm-up: %w", target.Name(), err)
		}
	}
	start, pubEnd, err := phase(cfg.Warmup, cfg.Records)
	if err != nil {
		err = fmt.Errorf("bench: %s: %w", target.Name(), err)
	}
	return tr.finish(res, p.sent, start, pubEnd), err
}

// queuePublisher publishes the run's records from one goroutine.
type queuePublisher struct {
	target   QueueTarget
	cfg      QueueConfig
	tr       *queueTracker
	payloads [][]byte // one per record, never reused
	sent     int64
	pace     paceEstimate
}

// run publishes records [first, first+n) in batches (on schedule at
// cfg.Rate), then flushes. It returns the clock times of the first publish
// and of the flush's return.
func (p *queuePublisher) run(ctx context.Context, first, n int) (start, end int64, err error) {
	clk := p.tr.clk
	var pc *pacer
	if p.cfg.Rate > 0 {
		pc = newPacer(clk, PaceSleep, &p.pace)
		defer pc.close()
	}
	start = clk.now()
	for i := first; i < first+n; i += p.cfg.PublishBatch {
		if err := ctx.Err(); err != nil {
			return start, -1, fmt.Errorf("stopped after publishing %d records: %w", p.sent, context.Cause(ctx))
		}
		batch := p.payloads[i:min(i+p.cfg.PublishBatch, first+n)]
		stamp := clk.now()
		if pc != nil {
			stamp = start + int64(float64(i-first)*1e9/float64(p.cfg.Rate))
			pc.waitUntil(stamp)
		}
		for j, pl := range batch {
			stampPayload(pl, stamp, uint64(i+j))
			binary.LittleEndian.PutUint64(pl[payloadHeaderSize:], p.tr.runID)
		}
		if err := p.target.Publish(ctx, batch); err != nil {
			return start, -1, fmt.Errorf("publish record %d: %w", i, err)
		}
		p.sent += int64(len(batch))
	}
	if err := p.target.Flush(ctx); err != nil {
		return start, -1, fmt.Errorf("flush: %w", err)
	}
	return start, clk.now(), nil
}

// queueTracker counts every ack of a run: a counter per record (shared by
// the consumers) and per consumer a histogram and counts.
type queueTracker struct {
	clk      clock
	runID    uint64
	warmup   uint64
	acks     []atomic.Uint32 // successful acks by sequence
	distinct atomic.Int64
	changed  chan struct{} // signalled (non-blocking) at every new distinct ack
	cons     []queueConsumerStats
}

type queueConsumerStats struct {
	mu                           sync.Mutex
	hist                         *Histogram
	dups, redelivered, ackErrors int64
	invalid                      int64
	lastAck                      int64 // clock ns of the latest measured ack
	firstErr                     error
	_                            [64]byte
}

func newQueueTracker(clk clock, cfg QueueConfig) *queueTracker {
	var id [8]byte
	_, _ = rand.Read(id[:])
	t := &queueTracker{clk: clk, runID: binary.LittleEndian.Uint64(id[:]), warmup: uint64(cfg.Warmup),
		acks: make([]atomic.Uint32, cfg.Warmup+cfg.Records), changed: make(chan struct{}, 1),
		cons: make([]queueConsumerStats, cfg.Consumers)}
	for i := range t.cons {
		t.cons[i].hist = NewHistogram()
	}
	return t
}

// consumer returns the acked callback of consumer i.
func (t *queueTracker) consumer(i int) func(payload []byte, redelivered bool, ackErr error) {
	s := &t.cons[i]
	return func(payload []byte, redelivered bool, ackErr error) {
		now := t.clk.now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if redelivered {
			s.redelivered++
		}
		if ackErr != nil {
			s.ackErrors++
			if s.firstErr == nil {
				s.firstErr = ackErr
			}
			return
		}
		sent, seq, ok := readPayload(payload)
		if !ok || len(payload) < queueHeaderSize || binary.LittleEndian.Uint64(payload[payloadHeaderSize:]) != t.runID ||
			seq >= uint64(len(t.acks)) {
			s.invalid++
			return
		}
		if t.acks[seq].Add(1) > 1 {
			s.dups++
			return
		}
		if seq >= t.warmup {
			s.hist.Record(time.Duration(now - sent))
			s.lastAck = max(s.lastAck, now)
		}
		t.distinct.Add(1)
		select {
		case t.changed <- struct{}{}:
		default:
		}
	}
}

// waitAcked waits until want distinct records are acked, ctx ends or a
// consumer fails.
func (t *queueTracker) waitAcked(ctx context.Context, want int64, failed <-chan error) error {
	for t.distinct.Load() < want {
		select {
		case <-t.changed:
		case err := <-failed:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%d of %d records acked: %w", t.distinct.Load(), want, context.Cause(ctx))
		}
	}
	return nil
}

// finish fills res from the tracker; start and pubEnd are the clock times
// of the first measured publish and of the final flush (-1 when the run
// did not get there).
func (t *queueTracker) finish(res QueueResult, published, start, pubEnd int64) QueueResult {
	all := NewHistogram()
	var last int64
	for i := range t.cons {
		s := &t.cons[i]
		s.mu.Lock()
		all.Merge(s.hist)
		res.Duplicates += s.dups
		res.Redelivered += s.redelivered
		res.AckErrors += s.ackErrors
		res.Invalid += s.invalid
		last = max(last, s.lastAck)
		if s.firstErr != nil && res.FirstAckError == "" {
			res.FirstAckError = s.firstErr.Error()
		}
		s.mu.Unlock()
	}
	res.Latency = all.Summary()
	res.Published = published
	res.Acked = t.distinct.Load()
	res.Lost = published - res.Acked
	if start >= 0 && last > start {
		res.Duration = time.Duration(last - start)
		res.AckedPerSec = float64(all.Count()) / res.Duration.Seconds()
	}
	if start >= 0 && pubEnd > start {
		res.PublishedPerSec = float64(res.Config.Records) / time.Duration(pubEnd-start).Seconds()
	}
	return res
}
