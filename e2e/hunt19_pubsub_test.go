package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/wire"
)

// hunt19Stream publishes the mixed sizes (then 30 events of 0-100 KiB, so
// that a replay's reads, of broker.Options.MaxBytesPerFrame (64 KiB),
// hold several events and cut some) to stream through c, whose frame
// limit is frame, with one event of the largest size plus one byte in the
// middle, which the SDK must refuse with wire.ErrFrameTooLarge while the
// publishes before and after it go through on the same client. It returns
// what was published, in order.
func hunt19Stream(t *testing.T, ctx context.Context, c *client.Client, frame int, stream string) *hunt19Want {
	t.Helper()
	max := hunt19MaxEvent(t, frame, stream)
	sizes := hunt19Sizes(max)
	for i := range 30 {
		sizes = append(sizes, i*7*kib%(100*kib)+i)
	}
	want := &hunt19Want{}
	for i, size := range sizes {
		if i == len(sizes)/2 {
			err := c.Publish(ctx, "default", stream, hunt19Payload(1e9, max+1))
			if !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("publish of %d bytes (max+1): %v, want wire.ErrFrameTooLarge", max+1, err)
			}
		}
		p := hunt19Payload(uint64(len(want.sums)), size)
		if err := c.Publish(ctx, "default", stream, p); err != nil {
			t.Fatalf("publish %d of %d bytes: %v", i, size, err)
		}
		want.add(p)
	}
	return want
}

// hunt19Read reads n events from sub and checks each against want from
// index from: in order, byte-exact, with consecutive offsets.
func hunt19Read(t testing.TB, ctx context.Context, who string, sub *client.Subscription, want *hunt19Want, from, n int) {
	t.Helper()
	var last uint64
	for i := from; i < from+n; i++ {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("%s: after %d events: %v", who, i-from, err)
		}
		want.check(t, who, i, ev.Payload)
		if i > from && ev.HasOffset && ev.Offset != last+1 {
			t.Fatalf("%s: event %d at offset %d after %d", who, i, ev.Offset, last)
		}
		last = ev.Offset
	}
}

// Three live subscribers of a durable and of an in-memory stream (policy
// block: lossless) receive every event of the mixed sizes, from 0 B to the
// largest a publish carries, once, in order, byte-exact; the largest plus
// one is refused by the SDK without breaking anything. Then a subscriber
// from earliest replays the durable log (reads of up to
// commitlog.MaxReadBuffer, cut by events of 1 MiB up to the largest,
// itself above commitlog.MaxReadBuffer) byte-exact, and one of the
// in-memory stream gets a byte-exact suffix of what its ring holds (see
// TestHunt19PubSubLargeFanoutAndReplayInMemory).
func TestHunt19PubSubLargeFanoutAndReplayDurable(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/disk"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block}), hunt19Server(hunt19LogFrame))
	hunt19CrossesLogReads(t, hunt19MaxEvent(t, hunt19LogFrame, "disk"))
	hunt19FanoutAndReplay(t, tb, hunt19LogFrame, "disk")
}

// hunt19Ring is the ring bound of the in-memory stream: about half of
// what hunt19Stream publishes at the frame limit hunt19Frame.
const hunt19Ring = 4 * mib

// The same on an in-memory stream whose ring holds hunt19Ring bytes: the
// replay from earliest is a byte-exact suffix of at most that, the events
// before it evicted.
func TestHunt19PubSubLargeFanoutAndReplayInMemory(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/mem"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block, RingMaxBytes: hunt19Ring}), hunt19Server(hunt19Frame))
	hunt19FanoutAndReplay(t, tb, hunt19Frame, "mem")
}

// hunt19FanoutAndReplay runs the flow of the two tests above on stream of
// tb, whose frame limit is frame.
func hunt19FanoutAndReplay(t *testing.T, tb *testbroker.Broker, frame int, stream string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	subc := hunt19Dial(t, tb, frame, client.Options{EventConns: 2})
	pub := hunt19Dial(t, tb, frame, client.Options{})
	var subs []*client.Subscription
	for range 3 {
		sub, err := subc.Subscribe(ctx, "default", stream)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs = append(subs, sub)
	}
	errs := make(chan error, len(subs))
	ready := make(chan *hunt19Want)
	for i, sub := range subs {
		go func() {
			want := <-ready
			rt := &recordT{}
			func() {
				defer func() { recover() }()
				hunt19Read(rt, ctx, fmt.Sprintf("live subscriber %d", i), sub, want, 0, len(want.sums))
			}()
			errs <- rt.err
		}()
	}
	want := hunt19Stream(t, ctx, pub, frame, stream)
	for range subs {
		ready <- want
	}
	for range subs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	total := 0
	for _, s := range want.sizes {
		total += s
	}
	t.Logf("%d events, %d MiB, to 3 subscribers", len(want.sums), total>>20)

	rep, err := subc.Subscribe(ctx, "default", stream, client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	if stream == "disk" {
		hunt19Read(t, ctx, "replay", rep, want, 0, len(want.sums))
		return
	}
	// In memory: a suffix of what the ring holds.
	ev, err := rep.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := int(ev.Offset)
	want.check(t, "ring replay", first, ev.Payload)
	kept := 0
	for _, s := range want.sizes[first:] {
		kept += s
	}
	if kept > hunt19Ring || first == 0 {
		t.Errorf("ring replay starts at event %d, keeping %d bytes (ring bound %d)", first, kept, hunt19Ring)
	}
	hunt19Read(t, ctx, "ring replay", rep, want, first+1, len(want.sums)-first-1)
	t.Logf("ring replay from event %d (%d MiB); missed %d", first, kept>>20, rep.Missed())
}

// recordT is a testing.TB for a goroutine other than the test's: its
// Fatal records the failure and panics (recovered by the goroutine).
type recordT struct {
	testing.TB
	err error
}

func (r *recordT) Helper() {}
func (r *recordT) Fatalf(format string, args ...any) {
	r.err = fmt.Errorf(format, args...)
	panic(r.err)
}

// A subscriber's queue bounded to 256 KiB and 4 frames, while its handler
// holds the first event, meets events of up to the largest a publish
// carries (most larger than the bound, each a frame of its own): under
// drop_new and drop_old every event is either delivered, byte-exact and
// in order, or counted dropped by the broker and missed by the SDK; under
// block all are delivered and the publisher is held up, never stuck.
// Nothing stays queued once the handler goes on.
func TestHunt19PubSubDropPoliciesVsLargeEvents(t *testing.T) {
	const bound = 256 * kib
	for _, pol := range []broker.QueuePolicy{broker.DropNew, broker.DropOld, broker.Block} {
		t.Run(pol.String(), func(t *testing.T) {
			tb := testbroker.Start(t, testbroker.WithStreams("default/default/bound"),
				testbroker.WithBrokerOptions(broker.Options{QueuePolicy: pol, QueueMaxBytes: bound, QueueCapacity: 4}), hunt19Server(hunt19Frame))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := hunt19Dial(t, tb, hunt19Frame, client.Options{})
			max := hunt19MaxEvent(t, hunt19Frame, "bound")
			sizes := []int{mib, 16 * kib, bound + 1, max, 0, 512 * kib, 1, bound, mib, 128 * kib, max, 768 * kib}
			want := &hunt19Want{}
			for i, s := range sizes {
				want.add(hunt19Payload(uint64(i), s))
			}
			gate := make(chan struct{})
			got := make(chan client.Event, len(sizes))
			sub, err := c.SubscribeFunc(ctx, "default", "bound", func(ev client.Event) error {
				if len(got) == 0 {
					select {
					case <-gate:
					case <-ctx.Done():
					}
				}
				got <- ev
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			st, err := tb.Broker.LookupStream("default", "default", "bound")
			if err != nil {
				t.Fatal(err)
			}
			waitSubscriptions(t, st, 1)
			bsub := st.Subscriptions()[0]
			pubDone := make(chan error, 1)
			go func() {
				for i, s := range sizes {
					if err := c.Publish(ctx, "default", "bound", hunt19Payload(uint64(i), s)); err != nil {
						pubDone <- fmt.Errorf("publish %d (%d bytes): %w", i, s, err)
						return
					}
				}
				pubDone <- nil
			}()
			if pol == broker.Block {
				// Let a backlog form (the next events wait for room), then
				// go on: the publisher is held up as long as the handler
				// holds the first event (block waits for a live subscriber).
				testwait.Eventually(t, "a backlog behind the held event", func() bool { return bsub.Stats().Enqueued >= 2 })
			} else if err := <-pubDone; err != nil {
				t.Fatal(err)
			}
			close(gate)
			if pol == broker.Block {
				if err := <-pubDone; err != nil {
					t.Fatalf("%v; stats %+v", err, bsub.Stats())
				}
			}
			// Every event is accounted for: enqueued or dropped.
			var ss broker.SubStats
			testwait.Eventually(t, "every event enqueued or dropped", func() bool {
				ss = bsub.Stats()
				return ss.Enqueued+ss.Dropped >= uint64(len(sizes))
			})
			if ss.Enqueued+ss.Dropped != uint64(len(sizes)) {
				t.Fatalf("stats %+v: %d events published", ss, len(sizes))
			}
			if pol == broker.Block && ss.Dropped != 0 {
				t.Errorf("block dropped %d events", ss.Dropped)
			}
			// The enqueued ones all arrive, in order, byte-exact.
			last := -1
			for range ss.Enqueued {
				var ev client.Event
				select {
				case ev = <-got:
				case <-ctx.Done():
					t.Fatalf("stuck: %d events delivered of %d enqueued (stats %+v)", last+1, ss.Enqueued, bsub.Stats())
				}
				i := int(ev.Offset)
				if i <= last {
					t.Fatalf("offset %d after %d", i, last)
				}
				want.check(t, "bounded subscriber", i, ev.Payload)
				last = i
			}
			select {
			case ev := <-got:
				t.Fatalf("event at offset %d beyond the %d enqueued", ev.Offset, ss.Enqueued)
			default:
			}
			if m := sub.Missed(); m != ss.Dropped-uint64(len(sizes)-1-last) {
				// Drops after the last delivered event show no gap.
				t.Errorf("SDK missed %d, broker dropped %d (last delivered %d)", m, ss.Dropped, last)
			}
			t.Logf("%v: enqueued %d, dropped %d, missed %d", pol, ss.Enqueued, ss.Dropped, sub.Missed())
		})
	}
}
