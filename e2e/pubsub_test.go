package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

func dial(t testing.TB, tb *testbroker.Broker, opts client.Options) *client.Client {
	t.Helper()
	opts.TLS = tb.ClientTLS
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, tb.Addr, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func seq(i uint64, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(b, i)
	return b
}

// collect reads n events and checks they are 0..n-1 in order.
func collect(ctx context.Context, sub *client.Subscription, n uint64) error {
	for want := range n {
		ev, err := sub.Next(ctx)
		if err != nil {
			return fmt.Errorf("after %d events: %w", want, err)
		}
		if got := binary.BigEndian.Uint64(ev.Payload); got != want {
			return fmt.Errorf("event %d has sequence %d (out of order or lost)", want, got)
		}
	}
	return nil
}

func waitSubscriptions(t *testing.T, s *broker.Stream, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(s.Subscriptions()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d subscriptions registered", len(s.Subscriptions()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Ten subscribers each receive all 10,000 events in publish order. The
// queue policy is block, the lossless setting (drop_new would be allowed to
// drop if a subscriber fell 512 frames behind on this shared 2-core box).
func TestFanoutTenSubscribersTenThousandEvents(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/fan"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block}))
	subs := dial(t, tb, client.Options{EventConns: 2})
	pubc := dial(t, tb, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const n = 10_000
	errs := make(chan error, 10)
	for range 10 {
		sub, err := subs.Subscribe(ctx, "default", "fan")
		if err != nil {
			t.Fatal(err)
		}
		go func() { errs <- collect(ctx, sub, n) }()
	}
	stream, _ := tb.Broker.Stream("default", "default", "fan")
	waitSubscriptions(t, stream, 10)

	p := pubc.Publisher("default", "fan", client.PublisherOptions{})
	for i := range uint64(n) {
		if err := p.Publish(ctx, seq(i, 64)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	for range 10 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := stream.Stats()
	for _, s := range st.Subscriptions {
		if s.Dropped != 0 {
			t.Fatalf("subscription %d dropped %d", s.ID, s.Dropped)
		}
	}
}

// A thousand subscriptions on one broker all work at once.
func TestThousandConcurrentSubscriptions(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/many"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const clients, perClient = 4, 250
	var all []*client.Subscription
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		c := dial(t, tb, client.Options{EventConns: 2})
		for range perClient {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub, err := c.Subscribe(ctx, "default", "many", client.WithBuffer(16))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, sub)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	stream, _ := tb.Broker.Stream("default", "default", "many")
	waitSubscriptions(t, stream, clients*perClient)
	pubc := dial(t, tb, client.Options{})
	const n = 10
	for i := range uint64(n) {
		if err := pubc.Publish(ctx, "default", "many", seq(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, len(all))
	for _, sub := range all {
		go func() { errs <- collect(ctx, sub, n) }()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := tb.Server.Stats().Subscriptions.Load(); got != clients*perClient {
		t.Fatalf("server reports %d live subscriptions", got)
	}
}

// One subscriber never reads. The others still receive everything, the
// publisher's acked publishes keep completing while the slow one's queue is
// full, and the slow one's drops are counted.
func TestSlowSubscriberIsolation(t *testing.T) {
	const capFrames = 256
	logs := &syncbuf.Buffer{}
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/iso"),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: capFrames}),
		testbroker.WithServerOptions(server.Options{DropReportInterval: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The slow client has tiny QUIC windows and a one-event buffer, so it
	// pushes back almost at once.
	slowc := dial(t, tb, client.Options{EventConns: 1, Transport: transport.Options{
		InitialStreamReceiveWindow: 16 << 10, MaxStreamReceiveWindow: 16 << 10,
		InitialConnectionReceiveWindow: 32 << 10, MaxConnectionReceiveWindow: 32 << 10}})
	slow, err := slowc.Subscribe(ctx, "default", "iso", client.WithBuffer(1))
	if err != nil {
		t.Fatal(err)
	}
	_ = slow // never read
	fastc := dial(t, tb, client.Options{EventConns: 2})
	var fast []*client.Subscription
	for range 3 {
		sub, err := fastc.Subscribe(ctx, "default", "iso")
		if err != nil {
			t.Fatal(err)
		}
		fast = append(fast, sub)
	}
	stream, _ := tb.Broker.Stream("default", "default", "iso")
	waitSubscriptions(t, stream, 4)

	const rounds, perRound = 20, capFrames / 2
	pubc := dial(t, tb, client.Options{})
	next := make([]uint64, len(fast))
	slowFullWhilePublishing := false
	for r := range rounds {
		// Each event is its own acked publish: one frame each.
		for i := range uint64(perRound) {
			if err := pubc.Publish(ctx, "default", "iso", seq(uint64(r*perRound)+i, 256)); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		for k, sub := range fast {
			for range perRound {
				ev, err := sub.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := binary.BigEndian.Uint64(ev.Payload); got != next[k] {
					t.Fatalf("fast subscriber %d: got %d want %d", k, got, next[k])
				}
				next[k]++
			}
		}
		if ss := subStats(stream, slow.ID()); r < rounds-1 && ss.Dropped > 0 && ss.QueueLen == ss.QueueCap {
			slowFullWhilePublishing = true
		}
	}
	ss := subStats(stream, slow.ID())
	t.Logf("slow subscriber: %+v", ss)
	if ss.Dropped == 0 || !slowFullWhilePublishing {
		t.Fatalf("slow subscriber never overflowed: %+v", ss)
	}
	total := uint64(rounds * perRound)
	if ss.Dropped+ss.Enqueued != total {
		t.Fatalf("slow subscriber accounting: enqueued %d + dropped %d != %d", ss.Enqueued, ss.Dropped, total)
	}
	for _, s := range stream.Stats().Subscriptions {
		if s.ID != slow.ID() && s.Dropped != 0 {
			t.Fatalf("fast subscriber %d dropped %d", s.ID, s.Dropped)
		}
	}
	// Operators see it in the log too.
	want := fmt.Sprintf("subscription=%d stream=default/default/iso policy=drop_new", slow.ID())
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no drop report for the slow subscriber in the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func subStats(s *broker.Stream, id uint64) broker.SubStats {
	for _, st := range s.Stats().Subscriptions {
		if st.ID == id {
			return st
		}
	}
	return broker.SubStats{}
}
