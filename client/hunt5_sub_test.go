package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/wire"
)

// An event stream whose hello is slow to come must not hold up the event
// streams behind it on the same connection: here the first stream never
// completes its hello until the subscribe that needs the second one has
// returned. Reading hellos one at a time on the accept loop blocked every
// subscribe of the connection for helloTimeout.
func TestHunt5SlowHelloDoesNotBlockOtherSubscriptions(t *testing.T) {
	release := make(chan struct{})
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		silent, err := sc.qc.OpenUniStreamSync(sc.ctx)
		if err != nil {
			return
		}
		hello, _ := wire.AppendMessageFrame(nil, &wire.EventStreamHello{SubscriptionID: 99})
		_, _ = silent.Write(hello[:3]) // the stream exists; its hello is incomplete
		sc.events(t, 1)
		sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
		select {
		case <-release:
			_, _ = silent.Write(hello[3:])
		case <-sc.ctx.Done():
		}
	})
	defer close(release)
	// Shorter than helloTimeout: with hellos read in line, the router is
	// still waiting on the silent stream when this ends.
	ctx, cancel := context.WithTimeout(context.Background(), helloTimeout-time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "default", "s")
	if err != nil {
		t.Fatalf("Subscribe behind a stream with a slow hello: %v", err)
	}
	_ = sub.Close()
}

// Close discards buffered events: Next after Close returns ErrClosed, as
// documented, instead of handing out what was buffered.
func TestHunt5NextAfterCloseIsErrClosed(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo")
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(payloads("e", 3))); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"e-0"}) // e-1 and e-2 came in the same frame: buffered
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if ev, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %q, %v; want ErrClosed", ev.Payload, err)
	}
}

// A frame without offsets after frames with them (a broker that stopped
// sending them, e.g. after a resubscribe landed on one without the
// extension) makes the last known offset stale: resuming from it would
// replay what was delivered since. The resubscribe must go to the tail.
func TestHunt5EventsWithoutOffsetsForgetTheResumePoint(t *testing.T) {
	c, starts := startResumeBroker(t, append(offsetEvents(0, "a", "b", "c"), plainEvents("d")...))
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "s")
	expectEvents(t, ctx, sub, []string{"a", "b", "c", "d"})
	<-starts
	select {
	case st := <-starts:
		if st.Kind != wire.StartLatest {
			t.Fatalf("resubscribed from %+v after an event without offset; want latest (no replay)", st)
		}
	case <-ctx.Done():
		t.Fatal("no resubscribe")
	}
}

// A frame that repeats offsets already delivered is not a gap, nor does it
// move the resume point back; the next new offset is not counted missed.
func TestHunt5DuplicateOffsetsAreNotMissed(t *testing.T) {
	var b []byte
	b = append(b, offsetEvents(0, "a", "b", "c", "d")...)
	b = append(b, offsetEvents(1, "b")...)
	b = append(b, offsetEvents(4, "e")...)
	c, starts := startResumeBroker(t, b)
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "s")
	for range 6 {
		if _, err := sub.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if m := sub.Missed(); m != 0 {
		t.Errorf("Missed = %d after a duplicate, want 0", m)
	}
	<-starts
	if st := <-starts; st != (wire.StartPosition{Kind: wire.StartOffset, Offset: 5}) {
		t.Errorf("resubscribed from %+v, want offset 5", st)
	}
}

// FromOffset(n): events the broker no longer had when it started (the
// first one delivered is past n) are a known gap, counted in Missed.
func TestHunt5FromOffsetGapIsMissed(t *testing.T) {
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		sc.events(t, 1, offsetEvents(15, "x"))
		sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "s", FromOffset(10))
	expectEvents(t, ctx, sub, []string{"x"})
	if m := sub.Missed(); m != 5 {
		t.Errorf("Missed = %d, want 5 (offsets 10..14 skipped)", m)
	}
}

// A FromOffset subscription that lost its stream before any event, and
// whose start is no longer retained when it resubscribes, goes on from the
// oldest retained offset (counting the gap), not from the tail.
func TestHunt5FromOffsetTooOldBeforeFirstEvent(t *testing.T) {
	starts := make(chan wire.StartPosition, 8)
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		starts <- sc.start()
		switch st := sc.start(); {
		case sc.n == 1:
			us := sc.events(t, 1)
			sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
			if us != nil {
				_ = us.Close()
			}
		case st.Kind == wire.StartOffset && st.Offset < 20:
			sc.reply(t, &wire.SubscribeCursorError{Reason: wire.CursorTooOld, Requested: st.Offset, Available: 20})
		case st.Kind == wire.StartOffset:
			sc.events(t, uint64(sc.n), offsetEvents(st.Offset, "y"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		default:
			sc.events(t, uint64(sc.n), offsetEvents(30, "tail"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		}
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "s", FromOffset(10))
	ev, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Payload) != "y" || ev.Offset != 20 {
		t.Fatalf("first event %q at %d; want \"y\" at 20 (the oldest retained)", ev.Payload, ev.Offset)
	}
	if m := sub.Missed(); m != 10 {
		t.Errorf("Missed = %d, want 10", m)
	}
}

// After a broker restart reset an in-memory stream's offsets, the resume
// point is in the future (in_future): the subscription goes on from the
// tail, and the lower offsets it then gets count as nothing missed.
func TestHunt5OffsetsResetAfterRestartNoBogusMissed(t *testing.T) {
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		st := sc.start()
		switch {
		case sc.n == 1:
			us := sc.events(t, 1, offsetEvents(1000, "old"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
			if us != nil {
				_ = us.Close()
			}
		case st.Kind == wire.StartOffset:
			sc.reply(t, &wire.SubscribeCursorError{Reason: wire.CursorInFuture, Requested: st.Offset, Available: 3})
		default:
			sc.events(t, uint64(sc.n), offsetEvents(3, "new"), offsetEvents(5, "newer"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		}
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "s")
	expectEvents(t, ctx, sub, []string{"old", "new", "newer"})
	if m := sub.Missed(); m != 1 {
		t.Errorf("Missed = %d, want 1 (offset 4, inside the new numbering)", m)
	}
}

// Offsets that would pass the top of uint64 inside one frame are a
// protocol error, not a wrap to 0 that then reads as a resume point and a
// huge gap.
func TestHunt5OffsetOverflowIsNotAGap(t *testing.T) {
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		if sc.n == 1 {
			us := sc.events(t, 1, offsetEvents(^uint64(0)-1, "a", "b", "c"))
			sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
			if us != nil {
				_ = us.Close()
			}
			return
		}
		sc.events(t, uint64(sc.n), offsetEvents(100, "z"))
		sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "s")
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.HasOffset && ev.Offset < ^uint64(0)-1 && string(ev.Payload) != "z" {
			t.Fatalf("event %q delivered at wrapped offset %d", ev.Payload, ev.Offset)
		}
		if string(ev.Payload) == "z" {
			break
		}
	}
	if m := sub.Missed(); m != 0 {
		t.Fatalf("Missed = %d after offsets wrapped", m)
	}
}

// A broker that accepts every subscribe and ends the event stream at once
// must not be hammered: each resubscribe that delivered nothing waits
// longer than the one before (the waits are recorded, not slept).
func TestHunt5ResubscribeBacksOffWhenStreamsEndAtOnce(t *testing.T) {
	waits := make(chan time.Duration, 16)
	orig := resubscribeWait
	resubscribeWait = func(ctx context.Context, d time.Duration) error {
		select {
		case waits <- d:
			return ctx.Err()
		default: // enough recorded: wait for Close
			<-ctx.Done()
			return ctx.Err()
		}
	}
	defer func() { resubscribeWait = orig }()
	c := startScriptBroker(t, Options{Reconnect: ReconnectPolicy{MinBackoff: time.Hour, MaxBackoff: time.Hour}}, func(sc subCall) {
		us := sc.events(t, uint64(sc.n))
		sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
		if us != nil {
			_ = us.Close()
		}
	})
	ctx := testCtx(t)
	sub, err := c.Subscribe(ctx, "default", "s")
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for len(got) < 4 {
		select {
		case d := <-waits:
			got = append(got, d)
		case <-ctx.Done():
			t.Fatalf("waits %v", got)
		}
	}
	_ = sub.Close()
	if got[len(got)-1] <= 0 {
		t.Fatalf("resubscribe waits %v: no backoff while every stream ends at once", got)
	}
}

// C called for the first time after Close returns a closed channel, as
// after any other end of the subscription, not a nil one that blocks a
// range loop forever.
func TestHunt5CAfterCloseIsClosed(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo")
	_ = sub.Close()
	select {
	case ev, ok := <-sub.C():
		if ok {
			t.Fatalf("C after Close delivered %q", ev.Payload)
		}
	case <-ctx.Done():
		t.Fatal("C after Close is not closed")
	}
}

// A handler's error ends the subscription with that error, and Close
// afterwards returns; a handler may Close other subscriptions.
func TestHunt5HandlerErrorEndsSubscription(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	other := subscribe(t, ctx, c, "default", "other")
	stop := errors.New("stop")
	var seen []string
	sub, err := c.SubscribeFunc(ctx, "default", "demo", func(ev Event) error {
		seen = append(seen, string(ev.Payload))
		if len(seen) == 2 {
			_ = other.Close()
			return stop
		}
		return nil
	}, WithBuffer(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(payloads("h", 5))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-ctx.Done():
		t.Fatal("subscription did not end")
	}
	if !errors.Is(sub.Err(), stop) || len(seen) != 2 {
		t.Fatalf("Err = %v after %v; want the handler's error after 2 events", sub.Err(), seen)
	}
	if !errors.Is(other.Err(), ErrClosed) {
		t.Fatalf("other.Err = %v, want ErrClosed", other.Err())
	}
	_ = sub.Close()
}

// Many subscriptions opened at once on one event connection each get
// their own stream; closing them while events flow and the client closes
// leaves no goroutine behind (goleak in TestMain).
func TestHunt5ConcurrentSubscribesOneConnection(t *testing.T) {
	_, c, ctx := setup(t, Options{EventConns: 1, SubscriptionBuffer: 1})
	const n = 64
	subs := make([]*Subscription, n)
	errs := make(chan error, n)
	for i := range subs {
		go func() {
			s, err := c.Subscribe(ctx, "default", "demo")
			subs[i] = s
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ids := map[uint64]bool{}
	for _, s := range subs {
		if ids[s.ID()] {
			t.Fatalf("two subscriptions share id %d", s.ID())
		}
		ids[s.ID()] = true
	}
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(payloads("m", 3))); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		expectEvents(t, ctx, s, payloads("m", 3))
	}
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(payloads("late", 8))); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for i, s := range subs {
		go func() {
			if i%2 == 0 {
				_ = s.Close()
			} else {
				<-s.C()
			}
			done <- struct{}{}
		}()
	}
	for range n / 2 {
		<-done
	}
	_ = c.Close()
	for range n / 2 {
		<-done
	}
	for _, s := range subs {
		if !errors.Is(s.Err(), ErrClosed) {
			t.Fatalf("Err after Client.Close = %v", s.Err())
		}
	}
}

// An event stream the SDK gives up on because of a bad frame is cancelled
// before it resubscribes, so the broker reaps that subscription: left
// open, the broker kept it (and its queue) alive, and a subscription with
// a chosen id could never resubscribe on that connection.
func TestHunt5AbandonedEventStreamIsCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reaped := make(chan bool, 1)
	c := startScriptBroker(t, Options{}, func(sc subCall) {
		if sc.n > 1 {
			sc.events(t, uint64(sc.n))
			sc.reply(t, &wire.Subscribed{SubscriptionID: uint64(sc.n)})
			return
		}
		// A per-subscription batch addressed to another subscription.
		us := sc.events(t, 1, wire.AppendSubEventBatchFrame(nil, 99, false, 0, asBytes([]string{"x"})))
		sc.reply(t, &wire.Subscribed{SubscriptionID: 1})
		if us == nil {
			return
		}
		select {
		case <-us.Context().Done():
			reaped <- true
		case <-ctx.Done():
			reaped <- false
		}
	})
	sub := subscribe(t, ctx, c, "default", "s")
	if !<-reaped {
		t.Fatal("the event stream the SDK abandoned was never cancelled")
	}
	_ = sub.Close()
}
