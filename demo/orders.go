package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// The orders demo's names.
const (
	ordersTenant = "shop"
	ordersNS     = "orders"
	ordersStream = "created"
	ordersDLQ    = ordersStream + ".dlq" // the server's default dead-letter suffix
	ordersGroup  = "billing"
	// ordersAttempts is the embedded broker's queue MaxAttempts.
	ordersAttempts = 3
	// strandedOrders is how many orders the crashing worker takes and
	// never acknowledges.
	strandedOrders = 5
	// crashPrefetch is the crashing worker's prefetch: the broker may have
	// handed it up to this many more orders when it dies.
	crashPrefetch = 8
	// workerPrefetch and orderWork make the healthy workers share the
	// orders: each holds a few at a time and takes a moment per order.
	workerPrefetch = 4
	orderWork      = time.Millisecond
)

type order struct {
	Run    int64  `json:"run"` // tells this run's orders from a previous run's on an external broker
	ID     int    `json:"id"`
	Item   string `json:"item"`
	Amount int    `json:"amount_cents"`
}

var errPoison = errors.New("invalid order: negative amount")

// process is every worker's business logic: a poison order is rejected.
func process(o order) error {
	if o.Amount < 0 {
		return errPoison
	}
	return nil
}

// ordersRun is the bookkeeping of one orders demo run.
type ordersRun struct {
	run         int64
	mu          sync.Mutex
	acked       map[int]int    // order id → times acknowledged
	byWorker    map[string]int // worker → orders acknowledged
	rejected    int            // poison deliveries rejected (nacked)
	stranded    map[int]bool   // orders the crashed worker held unacked
	redelivered map[int]string // stranded order → worker that finished it
}

// handle runs a worker's logic on m and says whether to ack it. Orders of
// other runs (an external broker's leftovers) are acknowledged unrecorded.
func (r *ordersRun) handle(worker string, m *client.Message) (ours bool, err error) {
	var o order
	if err := json.Unmarshal(m.Payload, &o); err != nil {
		return false, nil // not an order: acknowledge it away
	}
	if o.Run != r.run {
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := process(o); err != nil {
		r.rejected++
		return true, err
	}
	r.acked[o.ID]++
	r.byWorker[worker]++
	if r.stranded[o.ID] {
		r.redelivered[o.ID] = worker
	}
	return true, nil
}

// runOrders: a work queue whose worker crashes mid-batch.
func runOrders(ctx context.Context, e *env) error {
	orders, workers, crashAfter := 300, 3, 20
	if e.opts.Quick {
		orders, crashAfter = 60, 10
	}
	n := needs{
		durableStreams: []string{ordersTenant + "/" + ordersNS + "/" + ordersStream},
		streams:        []string{ordersTenant + "/" + ordersNS + "/" + ordersDLQ},
		queues:         server.QueueOptions{MaxAttempts: ordersAttempts, TickInterval: 20 * time.Millisecond},
	}
	if err := e.startBroker(n); err != nil {
		return err
	}
	e.notef("Queue groups share a durable stream's log: each order goes to one worker and is done when acknowledged.")
	r := &ordersRun{run: time.Now().UnixNano(), acked: map[int]int{}, byWorker: map[string]int{},
		stranded: map[int]bool{}, redelivered: map[int]string{}}
	poison := orders - 1

	dl, err := e.dial(ctx, ordersTenant, client.Options{EventConns: 1})
	if err != nil {
		return err
	}
	defer dl.Close()
	dlq, err := dl.Subscribe(ctx, ordersNS, ordersDLQ)
	if err != nil {
		return fmt.Errorf("subscribe to the dead-letter stream: %w", err)
	}
	defer dlq.Close()

	if err := publishOrders(ctx, e, r, orders, poison); err != nil {
		return err
	}
	if err := crashWorker(ctx, e, r, crashAfter); err != nil {
		return err
	}
	dead, err := runWorkers(ctx, e, r, workers, orders-1, dlq)
	if err != nil {
		return err
	}
	reportOrders(e, r, orders, poison, dead)
	return nil
}

func publishOrders(ctx context.Context, e *env, r *ordersRun, orders, poison int) error {
	producer, err := e.dial(ctx, ordersTenant, client.Options{PublishConns: 1, PublishStreamsPerConn: 1})
	if err != nil {
		return err
	}
	defer producer.Close()
	for i := range orders {
		o := order{Run: r.run, ID: i, Item: fmt.Sprintf("sku-%03d", i%17), Amount: 100 + i*7%900}
		if i == poison {
			o.Amount = -1
		}
		body, _ := json.Marshal(o)
		if err := producer.Publish(ctx, ordersNS, ordersStream, body); err != nil {
			return fmt.Errorf("publish order %d: %w", i, err)
		}
	}
	e.stepf("The producer published %d orders to %s/%s, each acknowledged by the broker once on the log.", orders, ordersNS, ordersStream)
	e.notef("Order %d is poison: its amount is negative, every worker rejects it.", poison)
	return nil
}

// crashWorker joins the group, acknowledges crashAfter orders, takes
// strandedOrders more and dies without acknowledging them.
func crashWorker(ctx context.Context, e *env, r *ordersRun, crashAfter int) error {
	c, err := e.dial(ctx, ordersTenant, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	co, err := c.Consumer(ctx, ordersNS, ordersStream, ordersGroup,
		client.WithConsumerName("worker-crash"), client.WithPrefetch(crashPrefetch))
	if err != nil {
		return fmt.Errorf("join group %s: %w", ordersGroup, err)
	}
	var held []int
	for done := 0; done < crashAfter+strandedOrders; {
		m, err := co.Next(ctx)
		if err != nil {
			return fmt.Errorf("worker-crash: %w", err)
		}
		var o order
		_ = json.Unmarshal(m.Payload, &o)
		if o.Run == r.run && done >= crashAfter {
			held = append(held, o.ID) // taken, never acknowledged
			done++
			continue
		}
		if ours, err := r.handle("worker-crash", m); ours && err != nil {
			return fmt.Errorf("worker-crash got the poison order early; use more orders")
		} else if ours {
			done++
		}
		if err := m.Ack(ctx); err != nil {
			return fmt.Errorf("worker-crash: ack: %w", err)
		}
	}
	r.mu.Lock()
	for _, id := range held {
		r.stranded[id] = true
	}
	r.mu.Unlock()
	if err := c.Close(); err != nil { // the process dies: no acks, no goodbye
		return err
	}
	e.stepf("worker-crash joined group %q (prefetch %d), acknowledged %d orders, then crashed holding orders %v.",
		ordersGroup, crashPrefetch, crashAfter, held)
	e.notef("Its connection is gone: the broker takes back every delivery it held unacknowledged.")
	return nil
}

// runWorkers runs the healthy workers until want orders are acknowledged
// and the poison order is on the dead-letter stream, which it returns.
func runWorkers(ctx context.Context, e *env, r *ordersRun, workers, want int, dlq *client.Subscription) (wire.DeadLetter, error) {
	e.stepf("%d healthy workers (prefetch %d) join the group and process everything left, the crashed worker's orders too.", workers, workerPrefetch)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for w := range workers {
		name := fmt.Sprintf("worker-%d", w+1)
		c, err := e.dial(ctx, ordersTenant, client.Options{})
		if err != nil {
			return wire.DeadLetter{}, err
		}
		defer c.Close()
		wg.Go(func() {
			_ = c.Consume(wctx, ordersNS, ordersStream, ordersGroup, func(ctx context.Context, m *client.Message) error {
				if err := sleep(ctx, orderWork); err != nil { // the work an order takes
					return err
				}
				_, err := r.handle(name, m)
				return err
			}, client.WithConsumerName(name), client.WithPrefetch(workerPrefetch), client.WithNackDelay(10*time.Millisecond))
		})
	}
	e.notef("A rejected order is nacked and retried; after the group's max attempts it goes to %s/%s.", ordersNS, ordersDLQ)
	var dead wire.DeadLetter
	for {
		ev, err := dlq.Next(ctx)
		if err != nil {
			return dead, fmt.Errorf("waiting for the dead letter: %w", err)
		}
		if err := json.Unmarshal(ev.Payload, &dead); err != nil {
			continue
		}
		var o order
		if json.Unmarshal(dead.Payload, &o) == nil && o.Run == r.run {
			break
		}
	}
	err := waitFor(ctx, 10*time.Millisecond, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.acked) >= want
	})
	if err != nil {
		r.mu.Lock()
		got := len(r.acked)
		r.mu.Unlock()
		return dead, fmt.Errorf("only %d of %d orders acknowledged: %w", got, want, err)
	}
	return dead, nil
}

func reportOrders(e *env, r *ordersRun, orders, poison int, dead wire.DeadLetter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.stepf("Results.")
	names := make([]string, 0, len(r.byWorker))
	for w := range r.byWorker {
		names = append(names, w)
	}
	slices.Sort(names)
	for _, w := range names {
		e.notef("%-12s acknowledged %d orders", w, r.byWorker[w])
	}
	stranded := make([]int, 0, len(r.stranded))
	for id := range r.stranded {
		stranded = append(stranded, id)
	}
	slices.Sort(stranded)
	survivors := 0
	for _, id := range stranded {
		w := r.redelivered[id]
		e.notef("order %d, stranded by the crash, was redelivered and finished by %s", id, w)
		if w != "" && w != "worker-crash" {
			survivors++
		}
	}
	once, dup := 0, 0
	for id := range orders {
		switch {
		case id == poison:
		case r.acked[id] == 1:
			once++
		case r.acked[id] > 1:
			dup++
		}
	}
	var o order
	_ = json.Unmarshal(dead.Payload, &o)
	e.notef("dead letter: order %d (offset %d) from group %q after %d attempts: %s", o.ID, dead.Offset, dead.Group, dead.Attempts, dead.Reason)
	e.check(once == orders-1 && dup == 0 && r.acked[poison] == 0,
		"%d of %d valid orders acknowledged exactly once (%d twice, 0 lost)", once, orders-1, dup)
	e.check(survivors == len(stranded) && len(stranded) == strandedOrders,
		"%d/%d orders stranded by the crash were redelivered to surviving workers", survivors, strandedOrders)
	e.check(o.ID == poison && dead.Attempts == r.rejected && dead.Attempts > 0,
		"the poison order %d was dead-lettered to %s/%s after %d attempts, each rejected by a worker", poison, ordersNS, ordersDLQ, dead.Attempts)
}
