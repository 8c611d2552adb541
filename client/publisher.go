package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/wire"
)

// PublisherOptions configure client-side batching. The zero value is
// valid.
type PublisherOptions struct {
	// MaxBatch is the most events sent in one batch. Default 64.
	MaxBatch int
	// MaxBytes closes a batch once its payloads reach this many bytes.
	// Default 64 KiB. Whatever it is, a batch also ends before an event
	// that would take its frame past Options.MaxFrameBytes (that event
	// starts the next batch), so events that each fit a frame are sent.
	MaxBytes int
	// Linger is how long a batch that is not full waits for more events.
	// Default 0: a batch is sent as soon as the queue is drained, so
	// batches grow only under load and an idle publisher adds no delay.
	Linger time.Duration
	// QueueSize bounds the events waiting to be batched. Default 4096.
	QueueSize int
	// MaxInFlight bounds the batches sent and not yet acknowledged.
	// Default 16.
	MaxInFlight int
	// NoAck sends fire-and-forget batches (wire.AckNone). By default every
	// batch is acknowledged (per batch) and failures reach Flush and Close.
	NoAck bool
}

// Publisher batches the events of one stream on the client side: Publish
// enqueues, a goroutine packs queued events into batches (in order) and
// sends them on the stream's publish lane, pipelining acks. Errors are
// reported by Flush and Close.
type Publisher struct {
	c         *Client
	namespace string
	stream    string
	opts      PublisherOptions

	queue    chan pubItem
	inflight chan sentBatch
	ctx      context.Context // aborted by Close's deadline or Client.Close
	cancel   context.CancelFunc
	done     chan struct{} // both goroutines exited

	// Closing: closing is closed first, so that Publish calls blocked on
	// a full queue give up; then closed is set under closeMu, held
	// shared while enqueuing, and sealed is closed: from then on nothing
	// enters the queue (see seal).
	closeMu     sync.RWMutex
	closed      bool
	closing     chan struct{}
	sealed      chan struct{}
	sealOnce    sync.Once
	closeCalled atomic.Bool // Close was called

	errMu  sync.Mutex
	err    error // first failure since the last Flush
	failed int   // events in failed batches since the last Flush
}

// pubItem is a queued event, or a flush marker when flush is set.
type pubItem struct {
	payload []byte
	flush   *flushReq
}

// flushReq is a Flush waiting for its answer. The ackLoop claims it
// before answering, and a Flush that gives up (its context ended)
// abandons it first: an abandoned request is not answered, so the failure
// it would have taken stays for the next Flush or Close.
type flushReq struct {
	ch    chan error // capacity 1
	state atomic.Int32
}

const (
	flushWaiting int32 = iota
	flushClaimed
	flushAbandoned
)

func (f *flushReq) claim() bool   { return f.state.CompareAndSwap(flushWaiting, flushClaimed) }
func (f *flushReq) abandon() bool { return f.state.CompareAndSwap(flushWaiting, flushAbandoned) }

// sentBatch is a batch on its way, handed from the sender to the acker.
type sentBatch struct {
	ack   pendingAck
	n     int
	err   error     // send failure
	flush *flushReq // flush marker that follows the batch
}

// Publisher returns a batching publisher for namespace/stream. Close it to
// flush and release its goroutines (Client.Close also stops it).
func (c *Client) Publisher(namespace, stream string, opts PublisherOptions) *Publisher {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 10
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16
	}
	p := &Publisher{
		c: c, namespace: namespace, stream: stream, opts: opts,
		queue:    make(chan pubItem, opts.QueueSize),
		inflight: make(chan sentBatch, opts.MaxInFlight),
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
		sealed:   make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(c.ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		p.seal()
		close(p.done)
		p.err = ErrClosed
		return p
	}
	c.pubs[p] = struct{}{}
	var wg sync.WaitGroup
	wg.Add(2)
	c.wg.Go(func() { defer wg.Done(); p.sendLoop() })
	c.wg.Go(func() { defer wg.Done(); p.ackLoop() })
	c.wg.Go(func() {
		wg.Wait()
		c.mu.Lock()
		delete(c.pubs, p)
		c.mu.Unlock()
		close(p.done)
	})
	return p
}

// Publish enqueues payload. It blocks while the queue is full; if ctx ends
// first it returns an error wrapping ErrQueueFull. The payload must not be
// modified until the batch is sent (after Flush it surely is).
func (p *Publisher) Publish(ctx context.Context, payload []byte) error {
	return p.enqueue(ctx, pubItem{payload: payload})
}

func (p *Publisher) enqueue(ctx context.Context, it pubItem) error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed || p.ctx.Err() != nil { // closed, or aborted by Client.Close
		return ErrClosed
	}
	select {
	case p.queue <- it:
		return nil
	default:
	}
	select {
	case p.queue <- it:
		return nil
	case <-p.ctx.Done():
		return ErrClosed
	case <-p.closing: // Close waits for enqueuers: do not hold it up
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
	}
}

// seal makes the publisher refuse new events: Publish calls blocked on a
// full queue return ErrClosed, and once seal returns no event enters the
// queue any more.
func (p *Publisher) seal() {
	p.sealOnce.Do(func() {
		close(p.closing)
		p.closeMu.Lock() // enqueuers hold it shared and leave promptly
		p.closed = true
		p.closeMu.Unlock()
		close(p.sealed)
	})
}

// Flush waits until every event published before it has been sent and
// (unless NoAck) acknowledged, and returns the first failure since the
// previous Flush: a *NotPublishedError with the number of events that
// failed since then, wrapping that failure (a *ServerError, a
// *ConnectionError...).
func (p *Publisher) Flush(ctx context.Context) error {
	marker := &flushReq{ch: make(chan error, 1)}
	if err := p.enqueue(ctx, pubItem{flush: marker}); err != nil {
		return err
	}
	select {
	case err := <-marker.ch:
		return err
	case <-p.done:
		select {
		case err := <-marker.ch:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		if marker.abandon() {
			return ctx.Err()
		}
		return <-marker.ch // claimed: the answer is on its way
	}
}

// Close flushes, stops the publisher and returns the first failure since
// the last Flush, with the number of events not published (a
// *NotPublishedError). Publish calls
// blocked on a full queue return ErrClosed. If ctx ends first, events
// still queued are dropped and counted, and the error matches ctx's. Safe
// to call more than once.
func (p *Publisher) Close(ctx context.Context) error {
	first := !p.closeCalled.Swap(true)
	p.seal()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.abort()
		<-p.done
		n, err := p.takeFailure()
		switch {
		case n == 0:
			return ctx.Err()
		case err == nil, errors.Is(err, ErrClosed):
			return &NotPublishedError{Count: n, Err: ctx.Err()}
		default:
			return &NotPublishedError{Count: n, Err: fmt.Errorf("%w (first failure: %w)", ctx.Err(), err)}
		}
	}
	if !first {
		return nil
	}
	return p.takeErr()
}

// abort stops the goroutines without flushing; the events they drop are
// counted as failed.
func (p *Publisher) abort() { p.cancel() }

// dropped counts n events the publisher will not send because it was
// aborted.
func (p *Publisher) dropped(n int) {
	if n == 0 {
		return
	}
	p.errMu.Lock()
	if p.err == nil {
		p.err = ErrClosed
	}
	p.failed += n
	p.errMu.Unlock()
}

// dropQueued counts the events of the queue once the publisher is aborted:
// it seals the queue, so none can be added after, and drains it.
func (p *Publisher) dropQueued(inHand int) {
	p.seal()
	n := inHand
	for {
		select {
		case it := <-p.queue:
			if it.flush == nil {
				n++
			}
		default:
			p.dropped(n)
			return
		}
	}
}

// next returns the next queued item, blocking. It reports false when the
// publisher is sealed and the queue is empty, or aborted.
func (p *Publisher) next() (pubItem, bool) {
	select {
	case it := <-p.queue:
		return it, true
	case <-p.ctx.Done():
		return pubItem{}, false
	case <-p.sealed:
		select {
		case it := <-p.queue:
			return it, true
		default:
			return pubItem{}, false
		}
	}
}

// sendLoop packs queued events into batches and sends them in order. A
// batch also ends before an event that would take its frame past the
// client's MaxFrameBytes: that event (carry) starts the next batch, so
// events that each fit a frame are never refused together.
func (p *Publisher) sendLoop() {
	defer close(p.inflight)
	lane := p.c.laneFor(p.namespace, p.stream)
	var (
		batch   [][]byte
		size    int
		frame   int // the batch's publish frame payload, see publishFrameBytes
		flush   *flushReq
		carry   []byte // the event that did not fit the batch before it
		carried bool
		json    bool // the batch goes as JSON publish_batch (a broker without binary acked publishes)
	)
	take := func(it pubItem) {
		if it.flush != nil {
			flush = it.flush
			return
		}
		if len(batch) == 0 {
			json = !p.opts.NoAck && !wire.Supports(p.c.ServerFlags(), wire.FlagBinaryPublishAcked) && p.c.ServerFlags() != 0
			frame = publishFrameBytes(p.c.opts.TenantID, p.namespace, p.stream, json)
		}
		n := publishEventBytes(it.payload, json)
		if len(batch) > 0 && frame+n > p.c.opts.MaxFrameBytes {
			carry, carried = it.payload, true
			return
		}
		batch = append(batch, it.payload)
		size += len(it.payload)
		frame += n
	}
	full := func() bool {
		return carried || flush != nil || len(batch) >= p.opts.MaxBatch || size >= p.opts.MaxBytes
	}
	var linger *time.Timer
	for {
		it, ok := pubItem{payload: carry}, carried
		carry, carried = nil, false
		if !ok {
			it, ok = p.next()
		}
		if !ok {
			if p.ctx.Err() != nil {
				p.dropQueued(0)
			}
			return
		}
		take(it)
		var expired <-chan time.Time
		if p.opts.Linger > 0 && !full() {
			if linger == nil {
				linger = time.NewTimer(p.opts.Linger)
				defer linger.Stop()
			} else {
				linger.Reset(p.opts.Linger)
			}
			expired = linger.C
		}
	fill:
		for !full() {
			select {
			case it := <-p.queue:
				take(it)
				continue
			default:
			}
			if expired == nil {
				break
			}
			select {
			case it := <-p.queue:
				take(it)
			case <-expired:
				expired = nil
				break fill
			case <-p.closing:
				break fill
			case <-p.ctx.Done():
				p.dropQueued(len(batch))
				return
			}
		}
		if expired != nil {
			linger.Stop() // Go 1.23+ timers: no stale tick after Stop
		}
		sb := sentBatch{n: len(batch), flush: flush}
		if len(batch) > 0 {
			mode := wire.AckPerBatch
			if p.opts.NoAck {
				mode = wire.AckNone
			}
			sb.ack, sb.err = lane.send(p.ctx, p.namespace, p.stream, batch, mode)
		}
		select {
		case p.inflight <- sb:
		case <-p.ctx.Done():
			p.dropQueued(sb.n + btoi(carried))
			return
		}
		clear(batch)
		batch, size, flush = batch[:0], 0, nil
	}
}

// publishFrameBytes is the payload of a publish frame of no events to
// tenant/ns/stream, as lane.send encodes it: a binary acked one (the
// largest binary encoding: request id and ack mode, the three names with
// their lengths, the event count), or with json a publish_batch message
// (with the largest request id).
func publishFrameBytes(tenant, ns, stream string, json bool) int {
	if !json {
		return 9 + 6 + len(tenant) + len(ns) + len(stream) + 4
	}
	f, err := wire.AppendMessageFrame(nil, &wire.PublishBatch{TenantID: tenant, Namespace: ns, Stream: stream,
		Payloads: [][]byte{}, RequestID: wire.U64(math.MaxUint64), Ack: wire.Ack(wire.AckPerBatch)})
	if err != nil { // names the encoder refuses: lane.send reports it
		return 0
	}
	return len(f) - wire.HeaderSize
}

// publishEventBytes is what payload adds to a publish frame: its length
// and bytes, or with json its base64 between quotes and a comma.
func publishEventBytes(payload []byte, json bool) int {
	if json {
		return base64.StdEncoding.EncodedLen(len(payload)) + 3
	}
	return 4 + len(payload)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ackLoop waits for the acks of sent batches, in order, records failures
// and answers flush markers.
func (p *Publisher) ackLoop() {
	for sb := range p.inflight {
		err := sb.err
		if err == nil && sb.ack.ch != nil {
			err = sb.ack.wait(p.ctx)
		}
		if err != nil {
			if p.ctx.Err() != nil {
				err = ErrClosed
			}
			p.errMu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.failed += sb.n
			p.errMu.Unlock()
		}
		if sb.flush != nil && sb.flush.claim() {
			sb.flush.ch <- p.takeErr()
		}
	}
}

// takeErr returns and clears the failure recorded since the last call.
func (p *Publisher) takeErr() error {
	n, err := p.takeFailure()
	if err != nil && n > 0 {
		return &NotPublishedError{Count: n, Err: err}
	}
	return err
}

// takeFailure returns and clears the first failure recorded since the
// last call and the number of events that failed.
func (p *Publisher) takeFailure() (int, error) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	n, err := p.failed, p.err
	p.err, p.failed = nil, 0
	return n, err
}
