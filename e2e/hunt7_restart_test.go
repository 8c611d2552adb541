package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// hunt7 payloads: an 8-byte id, the id's check word, then filler derived
// from the id, so a corrupted or foreign record is told from a real one.
const hunt7PayloadSize = 40

func hunt7Payload(id uint64) []byte {
	b := make([]byte, hunt7PayloadSize)
	binary.BigEndian.PutUint64(b, id)
	binary.BigEndian.PutUint64(b[8:], id*0x9E3779B97F4A7C15^0xfe11c5)
	for i := 16; i < len(b); i++ {
		b[i] = byte(id) + byte(i)
	}
	return b
}

// hunt7ID returns the id of a payload made by hunt7Payload, or false.
func hunt7ID(b []byte) (uint64, bool) {
	if len(b) != hunt7PayloadSize {
		return 0, false
	}
	id := binary.BigEndian.Uint64(b)
	return id, bytes.Equal(b, hunt7Payload(id))
}

// hunt7CacheOp is one cache call of TestHunt7MixedClientAcrossRestarts.
// epochS and epochE are the index of the latest broker started when the
// call began and ended: the call reached a broker in between.
type hunt7CacheOp struct {
	put            bool
	key            string
	value          []byte // put: written; get: read (nil: not found)
	version        uint64
	ttl            time.Duration // put: 0 none
	err            error
	start, end     time.Time
	epochS, epochE int64
}

type hunt7SubEvent struct {
	offset  uint64
	payload []byte
}

// hunt7Marker is the id of the record published after the quiet period:
// everything before it in the stream is the test's load.
const hunt7Marker = 1 << 62

// hunt7Call times one bounded SDK call and records it when it outlived the
// bound RequestTimeout should have put on it (a hang). Its context ends
// 10 s after limit, so a call that ignores RequestTimeout and waits for
// its context is recorded whatever the machine's load: limit (a few
// seconds past RequestTimeout) and the context's end are far apart.
type hunt7Calls struct {
	mu    sync.Mutex
	slow  []string
	count atomic.Int64
}

func (h *hunt7Calls) do(what string, limit time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	h.count.Add(1)
	if took := time.Since(start); took > limit {
		h.mu.Lock()
		h.slow = append(h.slow, fmt.Sprintf("%s took %v (err %v)", what, took.Round(time.Millisecond), err))
		h.mu.Unlock()
	}
	return err
}

// A broker process with a durable stream and a cache, and ONE SDK client
// using everything at once: an acked publisher (single and batch
// publishes), a durable subscription from offset 0 read with Next, a
// consumer group of two consumers (one joined by hand, acking with Ack and
// AckAsync in turn; one through Consume with AckAsync), and cache puts
// (with and without TTLs) and gets. The broker is stopped and restarted on
// the same port and data directory four times, alternately SIGKILL and
// SIGTERM (the last one, so both consumers work in the broker's last life
// at once; after a SIGKILL they may take up to the event idle timeout).
// A second subscription from offset 0 reads C slowly with a small buffer.
// After a quiet period:
//   - every acked publish is in the stream exactly once (read back through
//     a fresh subscription and from the log on disk), every failed one at
//     most once, a batch whole or not at all, in publish order;
//   - each subscription saw every offset at most once, in order, with the
//     stored payload, up to the last, and its gaps add up to Missed (a
//     durable stream resumes by offset: there are none in practice);
//   - the group delivered every record and has nothing left (Lag, InFlight,
//     Pending 0), and no record whose Ack returned nil reached a consumer
//     session joined after that;
//   - the cache returned only values written to that key, never one
//     from before a restart (caches are in memory), never an expired one,
//     and the last write when nothing happened in between; versions grow;
//   - every call returned within its RequestTimeout bound, Close returns
//     within 5 s, and no goroutine of the client is left.
func TestHunt7MixedClientAcrossRestarts(t *testing.T) {
	hunt7Restarts(t, hunt7Config{cycles: 4, minGap: 2000 * time.Millisecond, maxGap: 3500 * time.Millisecond, seed: 7})
}

// The same with eight restarts in quick succession (0.3 to 1.2 s apart, so
// the client is often still reconnecting when the next one comes) and
// --fsync always.
func TestHunt7MixedClientRapidRestarts(t *testing.T) {
	hunt7Restarts(t, hunt7Config{cycles: 8, minGap: 300 * time.Millisecond, maxGap: 1200 * time.Millisecond, seed: 8,
		args: []string{"--fsync", "always"}})
}

type hunt7Config struct {
	cycles         int
	minGap, maxGap time.Duration // between restarts
	seed           uint64
	args           []string // more felix serve flags
}

func hunt7Restarts(t *testing.T, cfg hunt7Config) {
	bin, dataDir, addr := processTest(t)
	leakOpts := []goleak.Option{goleak.IgnoreCurrent()}
	args := append([]string{"--durable-stream", "default/default/jobs", "--cache", "default/default/kv",
		"--shutdown-timeout", "3s", "--queue-max-attempts", "-1"}, cfg.args...)
	const requestTimeout = 3 * time.Second
	// A call returning later than limit hung: a call ends by RequestTimeout
	// (plus the scheduling of a loaded machine), a hung one by its context,
	// 10 s after limit (hunt7Calls.do).
	limit := requestTimeout + 5*time.Second

	var epoch atomic.Int64 // index of the latest broker started (or about to be)
	p := startFelix(t, bin, addr, dataDir, args...)
	defer func() { // whatever broker runs when the test ends
		if p != nil {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}()
	c := dialUntilUp(t, addr, dataDir, client.Options{RequestTimeout: requestTimeout, Reconnect: client.ReconnectPolicy{MaxBackoff: 200 * time.Millisecond}})
	clientClosed := false
	defer func() {
		if !clientClosed {
			c.Close()
		}
	}()

	var calls hunt7Calls
	stopLoad := make(chan struct{}) // publisher and cache stop
	stopAll := make(chan struct{})  // subscriber and consumers stop
	var loadWG, subWG, aWG sync.WaitGroup
	var failMu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		failMu.Lock()
		failures = append(failures, fmt.Sprintf(format, a...))
		failMu.Unlock()
	}

	// --- The acked publisher: Publish and PublishBatch of 3 in turn.
	type pubCall struct {
		ids []uint64
		err error
	}
	var pubMu sync.Mutex
	var pubs []pubCall
	loadWG.Go(func() {
		next := uint64(0)
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			var pc pubCall
			if i%2 == 0 {
				pc.ids = []uint64{next}
				next++
				pc.err = calls.do("publish", limit, func(ctx context.Context) error {
					return c.Publish(ctx, "default", "jobs", hunt7Payload(pc.ids[0]), client.WithAck(wire.AckPerMessage))
				})
			} else {
				pc.ids = []uint64{next, next + 1, next + 2}
				next += 3
				batch := [][]byte{hunt7Payload(pc.ids[0]), hunt7Payload(pc.ids[1]), hunt7Payload(pc.ids[2])}
				pc.err = calls.do("publish batch", limit, func(ctx context.Context) error {
					return c.PublishBatch(ctx, "default", "jobs", batch)
				})
			}
			pubMu.Lock()
			pubs = append(pubs, pc)
			pubMu.Unlock()
			if pc.err != nil {
				time.Sleep(20 * time.Millisecond) // the broker is away
			} else {
				time.Sleep(2 * time.Millisecond)
			}
		}
	})

	// --- The durable subscription from offset 0, read with Next.
	var subEvents []hunt7SubEvent // written by the subscriber goroutine only; read after subWG.Wait
	var markerOffset atomic.Int64
	markerOffset.Store(-1)
	var sub *client.Subscription
	if err := calls.do("subscribe", limit, func(ctx context.Context) error {
		var err error
		sub, err = c.Subscribe(ctx, "default", "jobs", client.FromOffset(0))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	subWG.Go(func() {
		for {
			if m := markerOffset.Load(); m >= 0 && len(subEvents) > 0 && subEvents[len(subEvents)-1].offset >= uint64(m) {
				return
			}
			select {
			case <-stopAll:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			ev, err := sub.Next(ctx)
			cancel()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				fail("subscription ended: %v", err)
				return
			}
			if !ev.HasOffset {
				fail("durable subscription event without an offset")
			}
			subEvents = append(subEvents, hunt7SubEvent{ev.Offset, ev.Payload})
		}
	})

	// --- A slow durable subscription from offset 0, read from C with a
	// small buffer: while the load runs it falls behind, so the broker's
	// queue for it (drop_new) may drop events, which must show as gaps
	// that Missed counts; after each restart it resumes by offset.
	var slowSub *client.Subscription
	if err := calls.do("subscribe", limit, func(ctx context.Context) error {
		var err error
		slowSub, err = c.Subscribe(ctx, "default", "jobs", client.FromOffset(0), client.WithBuffer(16))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var slowEvents []hunt7SubEvent // written by its goroutine only; read after subWG.Wait
	subWG.Go(func() {
		ch := slowSub.C()
		for {
			if m := markerOffset.Load(); m >= 0 && len(slowEvents) > 0 && slowEvents[len(slowEvents)-1].offset >= uint64(m) {
				return
			}
			select {
			case <-stopAll:
				return
			case ev, ok := <-ch:
				if !ok {
					fail("slow subscription ended: %v", slowSub.Err())
					return
				}
				slowEvents = append(slowEvents, hunt7SubEvent{ev.Offset, ev.Payload})
				select {
				case <-stopLoad:
				default:
					time.Sleep(3 * time.Millisecond)
				}
			case <-time.After(500 * time.Millisecond):
			}
		}
	})

	// --- The consumer group: A by hand (Ack and AckAsync in turn), B by
	// Consume with AckAsync.
	type delivery struct {
		consumer string
		session  int // A's join count; 0 for B
		offset   uint64
		attempt  int
		payload  []byte
	}
	var qMu sync.Mutex
	var deliveries []delivery
	ackedAt := map[uint64]time.Time{} // A's Ack returned nil
	sessionJoined := map[int]time.Time{}
	var asyncAckErrs, joins atomic.Int64
	ackErrs := map[string]int{} // A's Ack failures by kind, under qMu
	aWG.Go(func() {             // consumer A
		session := 0
		n := 0
		for {
			select {
			case <-stopAll:
				return
			default:
			}
			var co *client.Consumer
			err := calls.do("queue join", limit, func(ctx context.Context) error {
				var err error
				co, err = c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(8))
				return err
			})
			if err != nil {
				if !errors.Is(err, client.ErrDisconnected) {
					fail("consumer A join: %v", err)
					return
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			session++
			joins.Add(1)
			qMu.Lock()
			sessionJoined[session] = time.Now()
			qMu.Unlock()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				m, err := co.Next(ctx)
				cancel()
				if err != nil {
					if errors.Is(err, context.DeadlineExceeded) {
						select {
						case <-stopAll:
							co.Close()
							return
						default:
							continue
						}
					}
					if !errors.Is(err, client.ErrDisconnected) {
						fail("consumer A ended: %v", err)
					}
					co.Close()
					break
				}
				qMu.Lock()
				deliveries = append(deliveries, delivery{"A", session, m.Offset, m.Attempt, m.Payload})
				qMu.Unlock()
				n++
				if n%2 == 0 {
					err := calls.do("ack", limit, m.Ack)
					if err == nil {
						qMu.Lock()
						ackedAt[m.Offset] = time.Now()
						qMu.Unlock()
					} else {
						qMu.Lock()
						ackErrs[hunt7ErrClass(err)]++
						qMu.Unlock()
					}
				} else if err := m.AckAsync(); err != nil {
					asyncAckErrs.Add(1)
				}
			}
		}
	})
	consumeCtx, stopConsume := context.WithCancel(context.Background())
	defer stopConsume()
	consumeDone := make(chan error, 1)
	go func() { // consumer B
		consumeDone <- c.Consume(consumeCtx, "default", "jobs", "g", func(_ context.Context, m *client.Message) error {
			qMu.Lock()
			deliveries = append(deliveries, delivery{"B", 0, m.Offset, m.Attempt, m.Payload})
			qMu.Unlock()
			return nil
		}, client.WithAsyncAck(), client.WithPrefetch(8))
	}()

	// --- The cache: one goroutine, so each key's history is sequential.
	var cacheOps []hunt7CacheOp // read after loadWG.Wait
	kv := c.Cache("default", "kv")
	loadWG.Go(func() {
		rng := rand.New(rand.NewPCG(77, 7))
		keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
		ttls := []time.Duration{0, 80 * time.Millisecond, 700 * time.Millisecond, 20 * time.Second}
		for n := 0; ; n++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			key := keys[rng.IntN(len(keys))]
			if rng.IntN(3) > 0 {
				op := hunt7CacheOp{put: true, key: key, ttl: ttls[rng.IntN(len(ttls))],
					value: []byte(fmt.Sprintf("%s|%d|%s", key, n, strings.Repeat(string(rune('a'+n%26)), n%40)))}
				var opts []client.PutOption
				if op.ttl > 0 {
					opts = append(opts, client.WithTTL(op.ttl))
				}
				op.epochS, op.start = epoch.Load(), time.Now()
				op.err = calls.do("cache put", limit, func(ctx context.Context) error {
					var err error
					op.version, err = kv.Put(ctx, key, op.value, opts...)
					return err
				})
				op.end, op.epochE = time.Now(), epoch.Load()
				cacheOps = append(cacheOps, op)
				if op.err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if rng.IntN(2) == 0 { // a read of another key
					key = keys[rng.IntN(len(keys))]
				}
			}
			op := hunt7CacheOp{key: key}
			op.epochS, op.start = epoch.Load(), time.Now()
			op.err = calls.do("cache get", limit, func(ctx context.Context) error {
				it, err := kv.GetItem(ctx, key)
				if it.Found {
					op.value, op.version = it.Value, it.Version
				}
				return err
			})
			op.end, op.epochE = time.Now(), epoch.Load()
			cacheOps = append(cacheOps, op)
			if op.err != nil {
				time.Sleep(20 * time.Millisecond)
			} else {
				time.Sleep(3 * time.Millisecond)
			}
		}
	})

	// --- Restarts, alternately SIGKILL and SIGTERM.
	rng := rand.New(rand.NewPCG(cfg.seed, 77))
	var termExits []string
	var restartedAt []time.Time
	for cycle := range cfg.cycles {
		time.Sleep(cfg.minGap + time.Duration(rng.Int64N(int64(cfg.maxGap-cfg.minGap))))
		if cycle%2 == 1 {
			signalled := time.Now()
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-p.done:
				if err != nil {
					t.Errorf("cycle %d: broker exited with %v after SIGTERM; logs:\n%s", cycle, err, p.logs.String())
				}
				termExits = append(termExits, time.Since(signalled).Round(time.Millisecond).String())
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
				t.Errorf("cycle %d: broker did not exit within 10 s of SIGTERM (shutdown timeout 3 s); logs:\n%s", cycle, p.logs.String())
			}
		} else {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
		epoch.Add(1)
		p = startFelix(t, bin, addr, dataDir, args...)
		restartedAt = append(restartedAt, time.Now())
		pubMu.Lock()
		np := len(pubs)
		pubMu.Unlock()
		t.Logf("cycle %d (%s): restarted; %d publish calls so far", cycle, []string{"SIGKILL", "SIGTERM"}[cycle%2], np)
	}
	time.Sleep(4 * time.Second) // the consumers rejoin (up to the event idle timeout after a SIGKILL) and work

	// --- Quiet period: stop the load, publish a marker, let the readers
	// catch up.
	close(stopLoad)
	loadWG.Wait()
	var markerErr error
	for deadline := time.Now().Add(15 * time.Second); ; {
		markerErr = calls.do("publish marker", limit, func(ctx context.Context) error {
			return c.Publish(ctx, "default", "jobs", hunt7Payload(hunt7Marker))
		})
		if markerErr == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if markerErr != nil {
		t.Fatalf("publishing the marker after the last restart: %v", markerErr)
	}

	// Read the stream back from offset 0 through a fresh subscription.
	var stored [][]byte // payload by offset, up to and including the marker
	if err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rs, err := c.Subscribe(ctx, "default", "jobs", client.FromOffset(0))
		if err != nil {
			return err
		}
		defer rs.Close()
		for {
			ev, err := rs.Next(ctx)
			if err != nil {
				return fmt.Errorf("readback after %d events: %w", len(stored), err)
			}
			if ev.Offset != uint64(len(stored)) {
				return fmt.Errorf("readback: offset %d at position %d", ev.Offset, len(stored))
			}
			stored = append(stored, ev.Payload)
			if id, ok := hunt7ID(ev.Payload); ok && id == hunt7Marker {
				markerOffset.Store(int64(ev.Offset))
				return nil
			}
		}
	}(); err != nil {
		t.Fatal(err)
	}

	// Wait for the group to finish everything.
	var gs client.GroupStats
	var gsErr error
	for deadline := time.Now().Add(20 * time.Second); ; {
		gsErr = calls.do("queue stats", limit, func(ctx context.Context) error {
			var err error
			gs, err = c.QueueStats(ctx, "default", "jobs", "g")
			return err
		})
		if gsErr == nil && gs.Lag == 0 && gs.InFlight == 0 && gs.Pending == 0 && gs.Cursor >= uint64(len(stored)) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Let the subscriber reach the marker, then stop the consumers.
	subDone := make(chan struct{})
	go func() { subWG.Wait(); close(subDone) }()
	select {
	case <-subDone:
	case <-time.After(15 * time.Second):
		t.Errorf("the subscription did not reach the marker within 15 s of the quiet period")
	}
	close(stopAll)
	<-subDone
	aWG.Wait()
	stopConsume()
	if err := <-consumeDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Consume (consumer B) returned %v, want context.Canceled", err)
	}

	// --- Close the client: quickly, and leaving no goroutine behind.
	closeStart := time.Now()
	closeErr := make(chan error, 1)
	go func() { closeErr <- c.Close() }()
	select {
	case err := <-closeErr:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Client.Close did not return within 30 s")
	}
	clientClosed = true
	// Close waits at most RequestTimeout (3 s) for the fire-and-forget
	// flush; 10 s leaves a loaded machine room and still tells a Close
	// that waited for something unbounded (the 30 s above).
	if took := time.Since(closeStart); took > requestTimeout+7*time.Second {
		t.Errorf("Client.Close took %v", took)
	}
	// The broker's last life ends with SIGTERM; its log must verify.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Errorf("final SIGTERM: broker exited with %v", err)
	}
	p = nil
	if err := goleak.Find(leakOpts...); err != nil {
		t.Errorf("goroutines left after Client.Close: %v", err)
	}

	// ===================== Checks =====================
	for _, f := range failures {
		t.Error(f)
	}
	for _, s := range calls.slow {
		t.Errorf("hung call: %s", s)
	}

	// The stream: payloads valid, unique, in id order, batches whole.
	if len(stored) < 2 {
		t.Fatalf("stream holds %d records", len(stored))
	}
	onDisk := 0
	forEachRecord(t, filepath.Join(dataDir, "streams", "default", "default", "jobs"), func(r commitlog.Record) {
		if r.Offset < uint64(len(stored)) && !bytes.Equal(r.Payload, stored[r.Offset]) {
			t.Errorf("offset %d: the log on disk and the readback differ", r.Offset)
		}
		onDisk++
	})
	if onDisk != len(stored) {
		t.Errorf("the log on disk holds %d records, the readback up to the marker %d", onDisk, len(stored))
	}
	offsetOf := map[uint64]uint64{} // id -> offset
	prevID := int64(-1)
	for off, pl := range stored[:len(stored)-1] {
		id, ok := hunt7ID(pl)
		if !ok {
			t.Fatalf("offset %d holds a payload no publish made: %x", off, pl)
		}
		if _, dup := offsetOf[id]; dup {
			t.Errorf("id %d stored twice (offsets %d and %d)", id, offsetOf[id], off)
		}
		if int64(id) <= prevID {
			t.Errorf("offset %d: id %d after id %d (out of publish order)", off, id, prevID)
		}
		prevID = int64(id)
		offsetOf[id] = uint64(off)
	}
	var acked, failed, failedStored, partial int
	pubErrs := map[string]int{}
	for _, pc := range pubs {
		present := 0
		for i, id := range pc.ids {
			off, ok := offsetOf[id]
			if ok {
				present++
				if i > 0 && present > 1 && off != offsetOf[pc.ids[i-1]]+1 {
					t.Errorf("batch %v: not at consecutive offsets", pc.ids)
				}
			}
		}
		if pc.err == nil {
			acked++
			if present != len(pc.ids) {
				t.Errorf("publish %v was acked, but %d of its %d events are stored", pc.ids, present, len(pc.ids))
			}
			continue
		}
		failed++
		pubErrs[hunt7ErrClass(pc.err)]++
		switch present {
		case 0:
		case len(pc.ids):
			failedStored++
		default:
			partial++
			t.Errorf("failed publish %v (%v): %d of its %d events stored (a batch is whole or nothing)", pc.ids, pc.err, present, len(pc.ids))
		}
	}
	t.Logf("publishes: %d calls, %d acked, %d failed (%d of them stored anyway); %d records; errors %v",
		len(pubs), acked, failed, failedStored, len(stored)-1, pubErrs)
	if acked == 0 {
		t.Fatal("nothing acked")
	}

	// The subscriptions: every offset once, in order, the stored payload;
	// gaps only where Missed counts them.
	hunt7CheckSub(t, "subscription", subEvents, sub.Missed(), stored)
	hunt7CheckSub(t, "slow subscription", slowEvents, slowSub.Missed(), stored)

	// The queue.
	if gsErr != nil {
		t.Errorf("QueueStats: %v", gsErr)
	} else if gs.Lag != 0 || gs.InFlight != 0 || gs.Pending != 0 || gs.DeadLettered != 0 || gs.Lost != 0 {
		t.Errorf("group after the quiet period: %+v; want no lag, nothing in flight or pending, nothing dead-lettered or lost", gs)
	}
	deliveredN := map[uint64]int{}
	redelivered, byA, byB := 0, 0, 0
	for _, d := range deliveries {
		if d.offset >= uint64(len(stored)) {
			t.Errorf("delivery of offset %d beyond the stream (%d records)", d.offset, len(stored))
			continue
		}
		if !bytes.Equal(d.payload, stored[d.offset]) {
			t.Errorf("consumer %s: offset %d payload differs from the stream's", d.consumer, d.offset)
		}
		deliveredN[d.offset]++
		if d.attempt > 1 {
			redelivered++
		}
		if d.consumer == "A" {
			byA++
			if at, ok := ackedAt[d.offset]; ok && sessionJoined[d.session].After(at) {
				t.Errorf("offset %d: Ack returned nil at %v, then delivered again (attempt %d) to a consumer joined at %v",
					d.offset, at.Format("15:04:05.000"), d.attempt, sessionJoined[d.session].Format("15:04:05.000"))
			}
		} else {
			byB++
		}
	}
	var never []uint64
	dups := 0
	for off := range uint64(len(stored)) {
		switch n := deliveredN[off]; {
		case n == 0:
			never = append(never, off)
		case n > 1:
			dups += n - 1
		}
	}
	if len(never) > 0 {
		t.Errorf("%d records never delivered to the group, e.g. offsets %v", len(never), never[:min(len(never), 10)])
	}
	t.Logf("queue: %d deliveries (A %d in %d sessions, B %d), %d with attempt > 1, %d repeated offsets; A's Ack errors %v, AckAsync errors %d; stats %+v",
		len(deliveries), byA, joins.Load(), byB, redelivered, dups, ackErrs, asyncAckErrs.Load(), gs)

	// How long consumer A took to join each broker life.
	var rejoin []string
	for i, r := range restartedAt {
		first := time.Time{}
		for _, at := range sessionJoined {
			if at.After(r) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		if first.IsZero() {
			t.Errorf("consumer A never joined after restart %d", i)
			continue
		}
		d := first.Sub(r)
		rejoin = append(rejoin, d.Round(10*time.Millisecond).String())
		// The last restart is a SIGTERM (cycles is even): the broker closes
		// the connections and A rejoins at once; even after a SIGKILL it
		// would be within the event idle timeout (6 s). Two idle timeouts
		// tell a join that missed the restart from a slow machine.
		if i == len(restartedAt)-1 && d > 12*time.Second {
			t.Errorf("consumer A joined the last broker %v after its start (event idle timeout 6 s)", d)
		}
	}
	t.Logf("consumer A's first join after each restart: %v", rejoin)

	// The cache.
	hunt7CheckCache(t, cacheOps)
	t.Logf("%d calls; SIGTERM exits after %v; Close took %v", calls.count.Load(), termExits, time.Since(closeStart).Round(time.Millisecond))
}

func hunt7ErrClass(err error) string {
	var se *client.ServerError
	switch {
	case errors.As(err, &se):
		return "server: " + se.Message
	case errors.Is(err, client.ErrDisconnected):
		return "disconnected"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return err.Error()
}

// hunt7CheckSub checks the events a subscription from offset 0 received
// against the stream: offsets increasing (no duplicate, nothing out of
// order), each with the stored payload, up to the last record; the gaps
// add up to missed.
func hunt7CheckSub(t *testing.T, name string, events []hunt7SubEvent, missed uint64, stored [][]byte) {
	t.Helper()
	var gaps uint64
	next := uint64(0)
	for i, ev := range events {
		if ev.offset < next {
			t.Errorf("%s: event %d has offset %d, expected %d or later (duplicate or out of order)", name, i, ev.offset, next)
			return
		}
		gaps += ev.offset - next
		next = ev.offset + 1
		if ev.offset >= uint64(len(stored)) || !bytes.Equal(ev.payload, stored[ev.offset]) {
			t.Errorf("%s: offset %d payload differs from the stream's", name, ev.offset)
			return
		}
	}
	if next != uint64(len(stored)) {
		t.Errorf("%s: received up to offset %d, the stream holds %d records", name, int64(next)-1, len(stored))
	}
	if gaps != missed {
		t.Errorf("%s: %d events missing from its offsets, Missed() = %d", name, gaps, missed)
	}
	t.Logf("%s: %d events, %d missed", name, len(events), missed)
}

// hunt7CheckCache checks one goroutine's sequence of cache calls: a value
// read was written to that key (no corruption), with the version its put
// returned; it was not written to an earlier broker (caches are in
// memory: a restart empties them), has not expired, and is not older than
// a put that succeeded on the same broker; and a key put successfully
// is found by a read on the same broker before its TTL can have passed.
// Versions of successful puts grow.
func hunt7CheckCache(t *testing.T, ops []hunt7CacheOp) {
	t.Helper()
	const slack = 50 * time.Millisecond // clock granularity between the processes
	var puts, gets, found, getErrs, putErrs, staleAcrossRestart int
	var lastVersion uint64
	history := map[string][]int{} // key -> indices of its puts, in order
	errs := 0
	report := func(format string, a ...any) {
		if errs++; errs <= 15 {
			t.Errorf("cache: "+format, a...)
		}
	}
	for i, op := range ops {
		if op.put {
			puts++
			history[op.key] = append(history[op.key], i)
			if op.err != nil {
				putErrs++
				continue
			}
			if op.version <= lastVersion {
				report("put #%d of %s: version %d not above the previous put's %d", i, op.key, op.version, lastVersion)
			}
			lastVersion = op.version
			continue
		}
		gets++
		if op.err != nil {
			getErrs++
			continue
		}
		hist := history[op.key]
		last := -1 // the last successful put of the key
		failedAfter := false
		for _, j := range hist {
			if ops[j].err == nil {
				last, failedAfter = j, false
			} else {
				failedAfter = true
			}
		}
		if op.value == nil {
			if last < 0 || failedAfter {
				continue
			}
			L := ops[last]
			sameBroker := L.epochS == op.epochE
			unexpired := L.ttl == 0 || op.end.Add(slack).Before(L.start.Add(L.ttl))
			if sameBroker && unexpired {
				report("get #%d of %s: not found, after put #%d (ttl %v) succeeded on the same broker %v earlier",
					i, op.key, last, L.ttl, op.start.Sub(L.end).Round(time.Millisecond))
			}
			continue
		}
		found++
		src := -1
		for _, j := range hist {
			if bytes.Equal(ops[j].value, op.value) {
				src = j
			}
		}
		if src < 0 {
			report("get #%d of %s: value %q was never written to that key", i, op.key, op.value)
			continue
		}
		P := ops[src]
		if P.err == nil && op.version != P.version {
			report("get #%d of %s: version %d, its put #%d returned version %d", i, op.key, op.version, src, P.version)
		}
		if P.epochE < op.epochS {
			staleAcrossRestart++
			report("get #%d of %s: value of put #%d made on broker %d, read on broker %d or later (the cache survived a restart)",
				i, op.key, src, P.epochE, op.epochS)
		}
		if P.ttl > 0 && op.start.After(P.end.Add(P.ttl+slack)) {
			report("get #%d of %s: value of put #%d with ttl %v read %v after the put returned (expired)",
				i, op.key, src, P.ttl, op.start.Sub(P.end).Round(time.Millisecond))
		}
		if last > src && ops[last].epochS == op.epochE {
			report("get #%d of %s: value of put #%d, older than put #%d which succeeded on the same broker", i, op.key, src, last)
		}
	}
	if errs > 15 {
		t.Errorf("cache: ... and %d more", errs-15)
	}
	t.Logf("cache: %d puts (%d failed), %d gets (%d failed, %d found)", puts, putErrs, gets, getErrs, found)
	if puts-putErrs == 0 || found == 0 {
		t.Errorf("cache: the load did not run (%d successful puts, %d hits)", puts-putErrs, found)
	}
	_ = staleAcrossRestart
}
