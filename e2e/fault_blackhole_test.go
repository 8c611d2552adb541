package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/faultnet"
	"github.com/felixmq/felix/internal/testbroker"
)

// A blackhole longer than the idle timeout kills every connection of a
// client; when the link comes back the SDK reconnects, its subscriptions
// resume where they stopped (an in-memory stream from its replay ring, a
// durable one from its log) with no gap and no duplicate by offset and
// Missed() == 0, publishes go through again, and no call made during the
// blackhole hangs: each returns an error by its context
// (docs/semantics.md, "The Go SDK resumes by offset").
func TestFaultBlackholeReconnect(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/mem"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/dur"),
		testbroker.WithCaches(cache.Config{}, "default/default/bc"))
	px := faultProxy(t, tb, faultnet.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// The direct publisher does not go through the proxy: it publishes
	// while the other clients are cut off.
	direct := dial(t, tb, client.Options{}) // Dial opens its publish connections
	// Its connections, once the broker has counted them all (its event
	// connections are dialed at its first subscription).
	const openDirect = client.DefaultPublishConns
	for tb.Server.Stats().ConnectionsOpen.Load() != openDirect {
		within(t, ctx, "waiting for the direct client's connections")
		time.Sleep(5 * time.Millisecond)
	}

	// Short idle timeouts: the SDK gives its connections up a second into
	// the blackhole. (The broker, on quic-go, takes at least 5 s: quic-go
	// raises a peer's max_idle_timeout to 5 s.)
	// RequestTimeout stays 30s: with one shorter than the outage, Consume
	// gives up (TestFaultConsumeOutageLongerThanRequestTimeout).
	fast := shortIdle(0)
	subc := dialVia(t, tb, px, fast)
	pubc := dialVia(t, tb, px, fast)
	kv := pubc.Cache("default", "bc")
	if _, err := kv.Put(ctx, "k", []byte("before")); err != nil {
		t.Fatal(err)
	}
	// A queue consumer on the durable stream, cut off with the others: its
	// deliveries in flight go back when the broker drops its connection,
	// Consume rejoins, and the group still acks every record.
	qc := dialVia(t, tb, px, fast)
	qctx, qcancel := context.WithCancel(ctx)
	var qmu sync.Mutex
	qdeliveries := map[uint64][]int{}
	var qwg sync.WaitGroup
	qwg.Go(func() {
		err := qc.Consume(qctx, "default", "dur", "bg", func(_ context.Context, m *client.Message) error {
			_, seq, err := checkPayload(m.Payload)
			if err != nil || seq != m.Offset {
				t.Errorf("consumer: offset %d: seq %d, %v", m.Offset, seq, err)
			}
			qmu.Lock()
			qdeliveries[m.Offset] = append(qdeliveries[m.Offset], m.Attempt)
			qmu.Unlock()
			return nil
		}, client.WithPrefetch(8))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Consume returned while its context was live (%v): %v (%T)", qctx.Err(), err, err)
		}
	})
	defer func() { qcancel(); qwg.Wait() }()

	subs := map[string]*client.Subscription{}
	for _, s := range []string{"mem", "dur"} {
		sub, err := subc.Subscribe(ctx, "default", s)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[s] = sub
	}
	// expect reads the events from..to-1 of both streams, by offset (the
	// streams' offsets equal the sequence numbers: every publish below
	// is acked once, in order).
	expect := func(from, to uint64) {
		t.Helper()
		for name, sub := range subs {
			for i := from; i < to; i++ {
				ev, err := sub.Next(ctx)
				if err != nil {
					t.Fatalf("%s: waiting for offset %d: %v", name, i, err)
				}
				_, seq, err := checkPayload(ev.Payload)
				if err != nil || !ev.HasOffset || ev.Offset != i || seq != i {
					t.Fatalf("%s: got offset %d (has %v) seq %d (%v), want %d: gap or duplicate", name, ev.Offset, ev.HasOffset, seq, err, i)
				}
			}
			if m := sub.Missed(); m != 0 {
				t.Fatalf("%s: Missed = %d", name, m)
			}
		}
	}
	for i := uint64(0); i < 50; i++ {
		for _, s := range []string{"mem", "dur"} {
			if err := pubc.Publish(ctx, "default", s, faultPayload(0, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect(0, 50)
	connsBefore := tb.Server.Stats().ConnectionsTotal.Load()

	px.SetBlackhole(true)
	// Calls made now fail by their context (or the idle timeout), never
	// hang, and the ones that fail were not applied.
	bctx, bcancel := context.WithTimeout(ctx, 1200*time.Millisecond)
	defer bcancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := pubc.Publish(bctx, "default", "mem", faultPayload(7, 0)); err == nil {
			t.Error("a publish through the blackhole was acked")
		}
	})
	wg.Go(func() {
		if _, err := kv.Put(bctx, "k", []byte("lost")); err == nil {
			t.Error("a cache put through the blackhole succeeded")
		}
	})
	// Meanwhile the streams move on: 50..149 from the direct publisher
	// (within the 1024-event replay ring).
	for i := uint64(50); i < 150; i++ {
		for _, s := range []string{"mem", "dur"} {
			if err := direct.Publish(ctx, "default", s, faultPayload(0, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait until the broker has given up every proxied connection: the
	// blackhole has outlasted the idle timeout.
	for tb.Server.Stats().ConnectionsOpen.Load() > openDirect {
		within(t, ctx, "waiting for the proxied connections to time out")
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	// The SDK's redials fail for a while too.
	time.Sleep(time.Second)
	px.SetBlackhole(false)

	// The subscriptions resume at offset 50, and later publishes through
	// the proxy are acked and delivered after them.
	expect(50, 150)
	for i := uint64(150); i < 200; i++ {
		for _, s := range []string{"mem", "dur"} {
			if err := pubc.Publish(ctx, "default", s, faultPayload(0, i)); err != nil {
				t.Fatalf("publish %d to %s after the blackhole: %v", i, s, err)
			}
		}
	}
	expect(150, 200)
	if v, ok, err := kv.Get(ctx, "k"); err != nil || !ok || (string(v) != "before" && string(v) != "lost") {
		t.Fatalf("cache get after the blackhole: %q %v %v", v, ok, err)
	}
	var st queueStat
	for {
		if st = queueStats(t, tb, "dur", "bg"); st.Acked >= 200 {
			break
		}
		if ctx.Err() != nil {
			k, _ := tb.Server.GroupStats("default", "default", "dur", "bg")
			t.Fatalf("waiting for the group to ack 200 records: %v; group %+v", ctx.Err(), k)
		}
		time.Sleep(20 * time.Millisecond)
	}
	qcancel()
	qwg.Wait()
	if st = queueStats(t, tb, "dur", "bg"); st.Acked != 200 || st.Lag != 0 || st.InFlight != 0 || st.DeadLettered != 0 {
		t.Fatalf("group stats %+v, want 200 acked and nothing else", st)
	}
	qmu.Lock()
	for off := range uint64(200) {
		as := qdeliveries[off]
		if len(as) == 0 { // as[0] may be > 1: a delivery lost with the connection counts
			t.Fatalf("offset %d never delivered", off)
		}
		for _, a := range as[1:] {
			if a <= 1 {
				t.Fatalf("offset %d redelivered with attempt %d (%v)", off, a, as)
			}
		}
	}
	qmu.Unlock()
	if tb.Server.Stats().ConnectionsTotal.Load() == connsBefore {
		t.Fatal("no new connection: the blackhole did not make the clients reconnect")
	}
	if s := px.Stats(); s.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", s)
	}
	t.Logf("group %+v; %v", st, px)
}
