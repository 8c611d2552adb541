package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/client"
)

// soakRun is one RunSoak in progress: its clients, the workloads'
// counters and the errors.
type soakRun struct {
	cfg   SoakConfig
	t     *SoakTarget
	clk   clock
	runID uint64
	errs  *soakErrors

	clients []*client.Client
	mem     soakMem
	dur     soakDurable
	q       soakQueue
	kv      soakCache
	final   SoakBrokerCounters
	group   client.GroupStats // the group's counters after the drain

	stopCons context.CancelFunc // ends the queue consumers
	consWG   sync.WaitGroup
}

// soakMem is the in-memory stream: a publisher, readers and one
// subscriber that never reads.
type soakMem struct {
	pub       *client.Client
	published atomic.Int64 // acked publishes
	readers   []*soakReader
	slow      *client.Subscription
}

// soakReader is a subscriber of the in-memory stream that reads
// everything.
type soakReader struct {
	received, outOfOrder, foreign atomic.Int64
	last                          uint64 // owned by the subscription's handler
}

// soakDurable is the durable stream: a publisher whose every acked record
// must reach the one subscriber.
type soakDurable struct {
	pub       *client.Client
	published atomic.Int64    // acked publishes
	acked     []atomic.Uint32 // 1 once record seq's publish was acked
	recv      []atomic.Uint32 // deliveries of record seq
	received  atomic.Int64    // distinct records received
	dups      atomic.Int64
	foreign   atomic.Int64
}

// soakQueue is the consumer group on the queue stream.
type soakQueue struct {
	pub       *client.Client
	cons      []*client.Consumer // the first one also nacks
	perCons   []atomic.Int64     // deliveries per consumer
	published atomic.Int64       // acked publishes
	pubAcked  []atomic.Uint32
	acks      []atomic.Uint32 // successful acks of record seq
	distinct  atomic.Int64
	twice     atomic.Int64
	syncAcks  atomic.Int64
	asyncAcks atomic.Int64
	nacked    atomic.Int64
	redeliv   atomic.Int64
	foreign   atomic.Int64
}

// soakCache is the cache load.
type soakCache struct {
	c                             *client.Client
	kv                            *client.Cache
	keys                          []string
	puts, gets, hits, misses, bad atomic.Int64
}

// soakQueueGroup is the consumer group the soak's queue consumers join.
const soakQueueGroup = "soak"

// dial opens one client (one connection of each kind) to the broker.
func (r *soakRun) dial(ctx context.Context) (*client.Client, error) {
	c, err := (&FelixTarget{Addr: r.t.Addr, TLS: r.t.TLS}).dial(ctx)
	if err == nil {
		r.clients = append(r.clients, c)
	}
	return c, err
}

// setup connects every client, subscribes and joins the group: when it
// returns, every subscription is live.
func (r *soakRun) setup(ctx context.Context) (err error) {
	cfg := r.cfg
	r.dur.acked = make([]atomic.Uint32, cfg.records(cfg.DurableRate))
	r.dur.recv = make([]atomic.Uint32, len(r.dur.acked))
	r.q.pubAcked = make([]atomic.Uint32, cfg.records(cfg.QueueRate))
	r.q.acks = make([]atomic.Uint32, len(r.q.pubAcked))
	r.kv.keys = make([]string, cfg.CacheKeys)
	for i := range r.kv.keys {
		r.kv.keys[i] = fmt.Sprintf("soak-%d", i)
	}
	for _, p := range []**client.Client{&r.mem.pub, &r.dur.pub, &r.q.pub, &r.kv.c} {
		if *p, err = r.dial(ctx); err != nil {
			return err
		}
	}
	r.kv.kv = r.kv.c.Cache(SoakCache.Namespace, SoakCache.Cache)

	ns, mem := soakNames(SoakMemStream)
	for i := range cfg.MemReaders {
		c, err := r.dial(ctx)
		if err != nil {
			return err
		}
		rd := &soakReader{}
		r.mem.readers = append(r.mem.readers, rd)
		if _, err := c.SubscribeFunc(ctx, ns, mem, func(ev client.Event) error {
			r.read(rd, ev.Payload)
			return nil
		}); err != nil {
			return fmt.Errorf("subscribe reader %d to %s: %w", i, SoakMemStream, err)
		}
	}
	c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	// The subscriber that never reads: its one-event buffer fills, then
	// QUIC flow control, then its queue on the broker, which drops.
	if r.mem.slow, err = c.Subscribe(ctx, ns, mem, client.WithBuffer(1)); err != nil {
		return fmt.Errorf("subscribe the slow subscriber to %s: %w", SoakMemStream, err)
	}

	ns, dur := soakNames(SoakDurableStream)
	if c, err = r.dial(ctx); err != nil {
		return err
	}
	if _, err := c.SubscribeFunc(ctx, ns, dur, func(ev client.Event) error {
		r.durableRecv(ev.Payload)
		return nil
	}); err != nil {
		return fmt.Errorf("subscribe to %s: %w", SoakDurableStream, err)
	}

	ns, qs := soakNames(SoakQueueStream)
	for i := range cfg.QueueConsumers + 1 {
		c, err := r.dial(ctx)
		if err != nil {
			return err
		}
		co, err := c.Consumer(ctx, ns, qs, soakQueueGroup, client.WithPrefetch(16),
			client.WithConsumerName(fmt.Sprintf("soak-%d", i)))
		if err != nil {
			return fmt.Errorf("join group %s on %s: %w", soakQueueGroup, SoakQueueStream, err)
		}
		r.q.cons = append(r.q.cons, co)
	}
	r.q.perCons = make([]atomic.Int64, len(r.q.cons))
	return nil
}

// seqOf returns the sequence of one of this run's records.
func (r *soakRun) seqOf(p []byte) (uint64, bool) {
	_, seq, ok := readPayload(p)
	if !ok || len(p) < queueHeaderSize || binary.LittleEndian.Uint64(p[payloadHeaderSize:]) != r.runID {
		return 0, false
	}
	return seq, true
}

// stamp writes record seq's header into p.
func (r *soakRun) stamp(p []byte, seq int) {
	stampPayload(p, r.clk.now(), uint64(seq))
	binary.LittleEndian.PutUint64(p[payloadHeaderSize:], r.runID)
}

func (r *soakRun) read(rd *soakReader, p []byte) {
	seq, ok := r.seqOf(p)
	if !ok {
		rd.foreign.Add(1)
		return
	}
	if rd.received.Load() > 0 && seq <= rd.last {
		rd.outOfOrder.Add(1)
	}
	rd.last = seq
	rd.received.Add(1)
}

func (r *soakRun) durableRecv(p []byte) {
	seq, ok := r.seqOf(p)
	if !ok || seq >= uint64(len(r.dur.recv)) {
		r.dur.foreign.Add(1)
		return
	}
	if r.dur.recv[seq].Add(1) > 1 {
		r.dur.dups.Add(1)
		return
	}
	r.dur.received.Add(1)
}

// startLoad starts the publishers and the cache load (on wg; they end by
// end, a clock time) and the queue consumers (until stopConsumers).
func (r *soakRun) startLoad(ctx context.Context, wg *sync.WaitGroup, end int64) {
	cfg := r.cfg
	publisher := func(c *client.Client, key, kind string, rate int, published *atomic.Int64, acked []atomic.Uint32) {
		ns, stream := soakNames(key)
		buf := make([]byte, cfg.Payload)
		wg.Go(func() {
			r.paced(ctx, rate, end, func(i int) {
				r.stamp(buf, i)
				if err := c.Publish(ctx, ns, stream, buf); err != nil {
					r.errs.add(kind, err)
					return
				}
				if acked != nil {
					acked[i].Store(1)
				}
				published.Add(1)
			})
		})
	}
	publisher(r.mem.pub, SoakMemStream, "mem publish", cfg.MemRate, &r.mem.published, nil)
	publisher(r.dur.pub, SoakDurableStream, "durable publish", cfg.DurableRate, &r.dur.published, r.dur.acked)
	publisher(r.q.pub, SoakQueueStream, "queue publish", cfg.QueueRate, &r.q.published, r.q.pubAcked)
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(r.runID, 1))
		val := make([]byte, cfg.CacheValue)
		r.paced(ctx, cfg.CacheRate, end, func(i int) { r.cacheOp(ctx, rng, val, i) })
	})
	cctx, stop := context.WithCancel(context.Background())
	r.stopCons = stop
	for i, co := range r.q.cons {
		r.consWG.Go(func() { r.consume(cctx, co, &r.q.perCons[i], i == 0) })
	}
}

// paced calls op(i) for i = 0, 1, ... on a schedule of rate per second
// from now, until rate × Duration calls, the clock time end or ctx's end.
// A late call does not move the schedule: the loop catches up, but never
// past end, so an overloaded run makes fewer calls rather than run long.
func (r *soakRun) paced(ctx context.Context, rate int, end int64, op func(i int)) {
	n := r.cfg.records(rate)
	pc := newPacer(r.clk, PaceSleep, &paceEstimate{})
	defer pc.close()
	start := r.clk.now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start + int64(float64(i)*1e9/float64(rate))
		if at >= end || r.clk.now() >= end {
			return
		}
		pc.waitUntil(at)
		op(i)
	}
}

// consume runs one queue consumer until ctx ends. It acks alternately
// with Message.Ack and Message.AckAsync; the nacking one first nacks the
// first delivery of every NackEvery-th record. The nacking consumer joins
// first: a group may favour the member that joined first when records
// arrive slowly, and this one must get deliveries.
func (r *soakRun) consume(ctx context.Context, co *client.Consumer, delivered *atomic.Int64, nacker bool) {
	q := &r.q
	failed := func(kind string, err error) {
		if ctx.Err() == nil {
			r.errs.add(kind, err)
		}
	}
	for n := 0; ; n++ {
		m, err := co.Next(ctx)
		if err != nil {
			failed("queue consume", err)
			return
		}
		delivered.Add(1)
		if m.Attempt > 1 {
			q.redeliv.Add(1)
		}
		seq, ok := r.seqOf(m.Payload)
		ok = ok && seq < uint64(len(q.acks))
		switch {
		case nacker && ok && m.Attempt == 1 && seq%uint64(max(r.cfg.NackEvery, 1)) == 0:
			if err := m.Nack(ctx, r.cfg.NackDelay); err != nil {
				failed("queue nack", err)
			} else {
				q.nacked.Add(1)
			}
			continue
		case n%2 == 1:
			if err = m.AckAsync(); err == nil {
				q.asyncAcks.Add(1)
			}
		default:
			if err = m.Ack(ctx); err == nil {
				q.syncAcks.Add(1)
			}
		}
		switch {
		case err != nil:
			failed("queue ack", err)
		case !ok:
			q.foreign.Add(1)
		case q.acks[seq].Add(1) > 1:
			q.twice.Add(1)
		default:
			q.distinct.Add(1)
		}
	}
}

// cacheOp is the i-th cache operation: a PUT of a random key with a
// random TTL (even i) or a GET of a random key, whose value must be the
// key's.
func (r *soakRun) cacheOp(ctx context.Context, rng *rand.Rand, val []byte, i int) {
	kv, cfg := &r.kv, r.cfg
	k := rng.IntN(len(kv.keys))
	if i%2 == 0 {
		binary.LittleEndian.PutUint64(val, uint64(k))
		ttl := cfg.CacheTTLMin + time.Duration(rng.Int64N(int64(cfg.CacheTTLMax-cfg.CacheTTLMin)+1))
		if _, err := kv.kv.Put(ctx, kv.keys[k], val, client.WithTTL(ttl)); err != nil {
			r.errs.add("cache put", err)
			return
		}
		kv.puts.Add(1)
		return
	}
	v, found, err := kv.kv.Get(ctx, kv.keys[k])
	if err != nil {
		r.errs.add("cache get", err)
		return
	}
	kv.gets.Add(1)
	switch {
	case !found:
		kv.misses.Add(1)
	case len(v) != cfg.CacheValue || binary.LittleEndian.Uint64(v) != uint64(k):
		kv.bad.Add(1)
	default:
		kv.hits.Add(1)
	}
}

// memReceived is what the in-memory stream's readers received, together.
func (r *soakRun) memReceived() int64 {
	var n int64
	for _, rd := range r.mem.readers {
		n += rd.received.Load()
	}
	return n
}

// drain waits, at most cfg.Drain, until the durable subscriber has every
// acked record, the group has acked every published one and the readers
// of the in-memory stream have everything (or stopped receiving).
func (r *soakRun) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	last := int64(-1)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		mem := r.memReceived()
		caughtUp := r.dur.received.Load() >= r.dur.published.Load() && r.q.distinct.Load() >= r.q.published.Load()
		memDone := mem == last || mem >= r.mem.published.Load()*int64(len(r.mem.readers))
		if caughtUp && memDone {
			return
		}
		last = mem
		time.Sleep(100 * time.Millisecond)
	}
}

// readGroup reads the group's counters from the broker. AckAsync acks
// are not answered, so the last ones may still be on their way: it reads
// again (for at most 5 s) until the broker has as many acks as the
// consumers made.
func (r *soakRun) readGroup(ctx context.Context) {
	ns, qs := soakNames(SoakQueueStream)
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, err := r.kv.c.QueueStats(ctx, ns, qs, soakQueueGroup)
		if err != nil {
			r.errs.add("queue stats", err)
			return
		}
		r.group = g
		if int64(g.Acked) >= r.q.distinct.Load() || !time.Now().Before(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopConsumers ends the queue consumers and waits for them.
func (r *soakRun) stopConsumers() {
	if r.stopCons != nil {
		r.stopCons()
	}
	r.consWG.Wait()
}

// close ends the consumers and closes every client (and with them the
// subscriptions).
func (r *soakRun) close() {
	r.stopConsumers()
	for _, co := range r.q.cons {
		_ = co.Close()
	}
	for _, c := range r.clients {
		_ = c.Close()
	}
}
