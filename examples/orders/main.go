// Command orders is the queue demo: a producer publishes orders to a
// durable stream, a consumer group of workers processes them, and one
// worker crashes mid-way while holding orders it never acknowledged. Those
// orders are redelivered to the other workers; every order is acknowledged
// exactly once.
//
//	go run ./examples/orders
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/embed"
	"github.com/felixmq/felix/server"
)

type order struct {
	ID     int    `json:"id"`
	Item   string `json:"item"`
	Amount int    `json:"amount_cents"`
}

type options struct {
	orders     int
	workers    int
	crashAfter int // orders the crashing worker acks before it dies
}

type result struct {
	acked        map[int]int    // order id → times acked
	byWorker     map[string]int // worker → orders acked
	stranded     []int          // orders the crashed worker held unacked
	redelivered  map[int]string // stranded order → worker that finished it
	deadLettered uint64
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(ctx, os.Stdout, options{orders: 300, workers: 3, crashAfter: 20}); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, o options) (*result, error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	b, err := embed.Start(embed.Options{
		DurableStreams: []string{"shop/orders/created"},
		Queues:         server.QueueOptions{AckTimeout: time.Second, TickInterval: 20 * time.Millisecond},
	})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	say("1. broker up at %s with the durable stream shop/orders/created", b.Addr)

	producer, err := b.Dial(ctx, client.Options{TenantID: "shop"})
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	for i := range o.orders {
		body, _ := json.Marshal(order{ID: i, Item: fmt.Sprintf("sku-%03d", i%17), Amount: 100 + i*7%900})
		if err := producer.Publish(ctx, "orders", "created", body); err != nil {
			return nil, err
		}
	}
	say("2. producer published %d orders (each acknowledged by the broker)", o.orders)

	res := &result{acked: map[int]int{}, byWorker: map[string]int{}, redelivered: map[int]string{}}
	var mu sync.Mutex
	stranded := map[int]bool{}
	record := func(worker string, m *client.Message) error {
		var ord order
		if err := json.Unmarshal(m.Payload, &ord); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		res.acked[ord.ID]++
		res.byWorker[worker]++
		if stranded[ord.ID] {
			res.redelivered[ord.ID] = worker
		}
		return nil
	}

	// The worker that crashes: acks a few orders, then dies holding more.
	crasher, err := b.Dial(ctx, client.Options{TenantID: "shop"})
	if err != nil {
		return nil, err
	}
	co, err := crasher.Consumer(ctx, "orders", "created", "billing", client.WithConsumerName("worker-crash"), client.WithPrefetch(8))
	if err != nil {
		return nil, err
	}
	for range o.crashAfter {
		m, err := co.Next(ctx)
		if err != nil {
			return nil, err
		}
		if err := record("worker-crash", m); err != nil {
			return nil, err
		}
		if err := m.Ack(ctx); err != nil {
			return nil, err
		}
	}
	for range 5 { // takes five more orders and never acknowledges them
		m, err := co.Next(ctx)
		if err != nil {
			return nil, err
		}
		var ord order
		json.Unmarshal(m.Payload, &ord)
		stranded[ord.ID] = true
		res.stranded = append(res.stranded, ord.ID)
	}
	crasher.Close() // the process dies: no acks, no goodbye
	sort.Ints(res.stranded)
	say("3. worker-crash acked %d orders, then crashed holding orders %v", o.crashAfter, res.stranded)

	// The healthy workers process everything else, the stranded orders too.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for w := range o.workers {
		name := fmt.Sprintf("worker-%d", w+1)
		c, err := b.Dial(ctx, client.Options{TenantID: "shop"})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		wg.Go(func() {
			c.Consume(wctx, "orders", "created", "billing", func(_ context.Context, m *client.Message) error {
				return record(name, m)
			}, client.WithConsumerName(name))
		})
	}
	for {
		st, _ := b.Server.GroupStats("shop", "orders", "created", "billing")
		if st.Acked == uint64(o.orders) {
			res.deadLettered = st.DeadLettered
			break
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("only %d of %d orders acknowledged", st.Acked, o.orders)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	wg.Wait()

	workers := make([]string, 0, len(res.byWorker))
	for w := range res.byWorker {
		workers = append(workers, w)
	}
	sort.Strings(workers)
	for _, w := range workers {
		say("   %-12s acknowledged %d orders", w, res.byWorker[w])
	}
	for _, id := range res.stranded {
		say("   order %d, stranded by the crash, was redelivered and finished by %s", id, res.redelivered[id])
	}
	once := 0
	for id := range o.orders {
		if res.acked[id] == 1 {
			once++
		}
	}
	say("4. %d of %d orders acknowledged exactly once; %d redelivered after the crash; %d dead-lettered",
		once, o.orders, len(res.redelivered), res.deadLettered)
	return res, nil
}
