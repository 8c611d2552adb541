package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/server"
)

// A durable stream and a consumer group of three members, every client on
// the lossy link (5% loss, 0-5 ms jitter, 1% duplicates). From the broker's
// point of view every record is acked exactly once (Acked == n, nothing in
// flight, nothing lagging, nothing dead-lettered), every record is handed
// to the application intact, and a record is delivered again only where
// docs/semantics.md allows it: never after its Ack returned nil, and
// otherwise only after an ack timeout or a lost connection (the test nacks
// nothing), as a redelivery with a higher attempt number.
func TestFaultQueueLossyLink(t *testing.T) {
	tb := startQueueBroker(t, server.QueueOptions{}, "default/default/fjobs")
	px := faultProxy(t, tb, badLink)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	const n = 1200
	pc := dialVia(t, tb, px, client.Options{})
	for b := uint64(0); b < n; b += 100 {
		var evs [][]byte
		for i := b; i < b+100; i++ {
			evs = append(evs, faultPayload(1, i))
		}
		if err := pc.PublishBatch(ctx, "default", "fjobs", evs); err != nil {
			t.Fatalf("publish batch at %d: %v", b, err)
		}
	}

	var mu sync.Mutex
	deliveries := map[uint64][]int{} // offset -> attempts seen
	confirmed := map[uint64]bool{}   // offsets whose Ack returned nil
	handled := 0
	allHandled := make(chan struct{})
	deliver := func(who string, m *client.Message) {
		_, seq, err := checkPayload(m.Payload)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || seq != m.Offset {
			t.Errorf("%s: offset %d: seq %d, %v", who, m.Offset, seq, err)
		}
		if confirmed[m.Offset] {
			t.Errorf("%s: offset %d delivered again (attempt %d) after its Ack returned nil", who, m.Offset, m.Attempt)
		}
		deliveries[m.Offset] = append(deliveries[m.Offset], m.Attempt)
		if len(deliveries[m.Offset]) == 1 {
			if handled++; handled == n {
				close(allHandled)
			}
		}
	}

	cctx, ccancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Two members read with Next and Ack themselves (so the test knows
	// which acks were confirmed); the third is Consume with AckAsync.
	for w := range 2 {
		c := dialVia(t, tb, px, client.Options{})
		co, err := c.Consumer(ctx, "default", "fjobs", "g", client.WithPrefetch(16))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer co.Close()
			for {
				m, err := co.Next(cctx)
				if err != nil {
					if cctx.Err() == nil {
						t.Errorf("member %d: Next: %v", w, err)
					}
					return
				}
				deliver("member", m)
				if err := m.Ack(cctx); err != nil {
					if cctx.Err() == nil {
						t.Errorf("member %d: Ack of %d: %v", w, m.Offset, err)
					}
					continue
				}
				mu.Lock()
				confirmed[m.Offset] = true
				mu.Unlock()
			}
		})
	}
	ac := dialVia(t, tb, px, client.Options{})
	// Every connection of the test is open now: a new one is a reconnect.
	connsBefore := tb.Server.Stats().ConnectionsTotal.Load()
	wg.Go(func() {
		err := ac.Consume(cctx, "default", "fjobs", "g", func(_ context.Context, m *client.Message) error {
			deliver("async member", m)
			return nil
		}, client.WithAsyncAck(), client.WithPrefetch(16))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("async member: Consume: %v", err)
		}
	})

	select {
	case <-allHandled:
	case <-ctx.Done():
		mu.Lock()
		h := handled
		mu.Unlock()
		t.Fatalf("%d of %d records handled; group %+v", h, n, queueStats(t, tb, "fjobs", "g"))
	}
	// The broker records the last (async) acks shortly after.
	var st queueStat
	for {
		st = queueStats(t, tb, "fjobs", "g")
		if st.Acked >= n || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	within(t, ctx, "waiting for the group's acks")
	ccancel()
	wg.Wait()
	st = queueStats(t, tb, "fjobs", "g")
	if st.Acked != n || st.Lag != 0 || st.InFlight != 0 || st.DeadLettered != 0 {
		t.Fatalf("group stats %+v, want Acked %d and nothing lagging, in flight or dead", st, n)
	}
	reconnected := tb.Server.Stats().ConnectionsTotal.Load() != connsBefore
	mu.Lock()
	defer mu.Unlock()
	redelivered := 0
	for off := range uint64(n) {
		as := deliveries[off]
		if len(as) == 0 {
			t.Fatalf("offset %d never delivered", off)
		}
		if as[0] != 1 && !reconnected { // else a delivery lost with a connection counts
			t.Errorf("offset %d first delivered with attempt %d", off, as[0])
		}
		for i := 1; i < len(as); i++ {
			redelivered++
			if as[i] <= 1 {
				t.Errorf("offset %d delivered again with attempt %d (attempts %v)", off, as[i], as)
			}
		}
	}
	if redelivered > 0 && st.TimedOut == 0 && !reconnected {
		t.Errorf("%d redeliveries without an ack timeout or a lost connection (stats %+v)", redelivered, st)
	}
	if s := px.Stats(); s.Dropped == 0 || s.Duplicated == 0 {
		t.Fatalf("the link was not bad: %+v", s)
	}
	t.Logf("redelivered %d, reconnected %v, group %+v, %v", redelivered, reconnected, st, px)
}
