package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/wire"
)

// brokerClock stamps the test broker's events: in-memory streams through
// broker.Options.Clock, durable ones through commitlog.Options.Clock.
type brokerClock struct{ testclock.Clock }

var fromTimeBase = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func (c *brokerClock) set(d time.Duration) {
	c.Set(fromTimeBase.Add(d))
}

// startTimeBroker serves default/default/mem in memory and
// default/default/log on a disk log of 256-byte segments, both stamped
// by the returned clock.
func startTimeBroker(t *testing.T, dir string) (*testbroker.Broker, *brokerClock) {
	t.Helper()
	clock := &brokerClock{}
	clock.set(0)
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/mem"),
		testbroker.WithBrokerOptions(broker.Options{Clock: clock.Now, QueuePolicy: broker.Block, QueueCapacity: 4096}),
		testbroker.WithDurableStreams(dir, commitlog.Options{SegmentBytes: 256, Clock: clock.Now, RetentionInterval: -1,
			Logger: slog.New(slog.DiscardHandler)}, "default/default/log"))
	return tb, clock
}

// publishBatches publishes batch b ("b<b>-0".."b<b>-4") at b seconds
// after fromTimeBase, for b in 0..n-1.
func publishBatches(t *testing.T, ctx context.Context, c *Client, clock *brokerClock, stream string, n int) {
	t.Helper()
	for b := range n {
		clock.set(time.Duration(b) * time.Second)
		if err := c.PublishBatch(ctx, "default", stream, asBytes(payloads(fmt.Sprintf("b%d", b), 5))); err != nil {
			t.Fatalf("publish batch %d: %v", b, err)
		}
	}
}

// expectOffsets reads events and checks payloads and offsets.
func expectOffsets(t *testing.T, ctx context.Context, sub *Subscription, from uint64, want []string) {
	t.Helper()
	for i, w := range want {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d of %d: %v", i, len(want), err)
		}
		if string(ev.Payload) != w || !ev.HasOffset || ev.Offset != from+uint64(i) {
			t.Fatalf("event %d = %q at offset %d (%v), want %q at %d", i, ev.Payload, ev.Offset, ev.HasOffset, w, from+uint64(i))
		}
	}
}

// Three batches a second apart, on an in-memory stream and on a durable
// one of several segments: FromTime between two batches receives exactly
// the events from the first batch after it, in order, then live events;
// a time before the oldest receives everything; a time in the future
// only what is published after it.
func TestFromTime(t *testing.T) {
	tb, clock := startTimeBroker(t, t.TempDir())
	c := dial(t, tb, Options{})
	ctx := testCtx(t)
	all := append(append(payloads("b0", 5), payloads("b1", 5)...), payloads("b2", 5)...)
	for _, stream := range []string{"mem", "log"} {
		t.Run(stream, func(t *testing.T) {
			publishBatches(t, ctx, c, clock, stream, 3)
			if st, _ := tb.Broker.Stream("default", "default", stream); st.IsDurable() {
				if segs := st.Log().(*commitlog.DiskLog).Stats().Segments; segs < 3 {
					t.Fatalf("%d segments", segs)
				}
			}
			between, err := c.Subscribe(ctx, "default", stream, FromTime(fromTimeBase.Add(500*time.Millisecond)))
			if err != nil {
				t.Fatal(err)
			}
			defer between.Close()
			exact, err := c.Subscribe(ctx, "default", stream, FromTime(fromTimeBase.Add(2*time.Second)))
			if err != nil {
				t.Fatal(err)
			}
			defer exact.Close()
			before, err := c.Subscribe(ctx, "default", stream, FromTime(fromTimeBase.Add(-24*time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			defer before.Close()
			future, err := c.Subscribe(ctx, "default", stream, FromTime(fromTimeBase.Add(time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			defer future.Close()

			clock.set(3 * time.Second)
			if err := c.Publish(ctx, "default", stream, []byte("live")); err != nil {
				t.Fatal(err)
			}
			expectOffsets(t, ctx, between, 5, append(all[5:], "live"))
			expectOffsets(t, ctx, exact, 10, append(all[10:], "live"))
			expectOffsets(t, ctx, before, 0, append(all[:len(all):len(all)], "live"))
			expectOffsets(t, ctx, future, 15, []string{"live"})
		})
	}
}

// Against a broker that does not grant the start-time extension (the
// reference: offsets, no extension), FromTime fails with ErrUnsupported
// and the subscribe is never sent.
func TestFromTimeUnsupported(t *testing.T) {
	kv, received := dialReferenceCache(t)
	ctx := testCtx(t)
	if _, err := kv.c.Subscribe(ctx, "default", "s", FromTime(fromTimeBase)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("FromTime without the extension: %v, want ErrUnsupported", err)
	}
	if got := received(); len(got) != 0 {
		t.Fatalf("the broker received %v", got)
	}
}

// A resubscribe goes on from the offset after the last event received,
// not from the time again; one that received nothing asks for the time
// again (it names the same events).
func TestFromTimeResubscribe(t *testing.T) {
	orig := resubscribeWait
	resubscribeWait = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	t.Cleanup(func() { resubscribeWait = orig })
	at := fromTimeBase.Add(90 * time.Minute)
	for _, c := range []struct {
		name   string
		first  []byte
		events []string
		second wire.StartPosition
	}{
		{"after events", offsetEvents(5, "a", "b"), []string{"a", "b"}, wire.StartPosition{Kind: wire.StartOffset, Offset: 7}},
		{"nothing delivered", nil, nil, wire.StartAt(at)},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, starts := startResumeBroker(t, c.first)
			ctx := testCtx(t)
			sub, err := cl.Subscribe(ctx, "default", "s", FromTime(at))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if first := <-starts; first != wire.StartAt(at) || first.TimeMs != uint64(at.UnixMilli()) {
				t.Fatalf("first subscribe from %+v", first)
			}
			expectEvents(t, ctx, sub, c.events)
			select {
			case second := <-starts:
				if second != c.second {
					t.Fatalf("resubscribed from %+v, want %+v", second, c.second)
				}
			case <-ctx.Done():
				t.Fatal("no resubscribe")
			}
		})
	}
}

// Over a broker restart, a durable subscription that started at a time
// continues after the last event it received: nothing twice, nothing lost.
func TestFromTimeAcrossRestart(t *testing.T) {
	tb, clock := startTimeBroker(t, t.TempDir())
	c := dial(t, tb, Options{})
	ctx := testCtx(t)
	publishBatches(t, ctx, c, clock, "log", 3)
	sub, err := c.Subscribe(ctx, "default", "log", FromTime(fromTimeBase.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	expectOffsets(t, ctx, sub, 5, append(payloads("b1", 5), payloads("b2", 5)...))
	tb.Restart()
	clock.set(10 * time.Second)
	// Publishing redials; once published, the resubscription replays from
	// offset 15 whenever it happens.
	for {
		err := c.Publish(ctx, "default", "log", []byte("after"))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("publish after restart: %v", err)
		}
	}
	expectOffsets(t, ctx, sub, 15, []string{"after"})
	if sub.Missed() != 0 {
		t.Fatalf("missed %d", sub.Missed())
	}
}
