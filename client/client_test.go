package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

func TestPublishSubscribeRoundTrip(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	// The SDK offers every extension it speaks, and the broker echoes them.
	if want := wire.KnownFlags | wire.ExtensionCaps; c.ServerFlags() != want {
		t.Errorf("ServerFlags = %#x, want %#x", c.ServerFlags(), want)
	}
	sub := subscribe(t, ctx, c, "default", "demo")
	if sub.ID() == 0 {
		t.Error("subscription id 0")
	}
	want := payloads("hello", 3)
	for _, p := range want {
		if err := c.Publish(ctx, "default", "demo", []byte(p)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if err := c.Publish(ctx, "default", "demo", []byte("per-message"), WithAck(wire.AckPerMessage)); err != nil {
		t.Fatalf("Publish per_message: %v", err)
	}
	expectEvents(t, ctx, sub, append(want, "per-message"))

	// Channel form, and event fields.
	if err := c.Publish(ctx, "default", "demo", []byte("via-channel")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-sub.C():
		if string(ev.Payload) != "via-channel" || ev.Namespace != "default" || ev.Stream != "demo" || !ev.HasOffset {
			t.Errorf("event = %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event on C()")
	}
	// Another stream's events do not leak in.
	if err := c.Publish(ctx, "default", "other", []byte("elsewhere")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if ev, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next = %q, %v; want a timeout", ev.Payload, err)
	}
}

func TestPublishUnknownStream(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	err := c.Publish(ctx, "default", "nope", []byte("x"))
	if !isServerError(err, "stream not found: ") {
		t.Fatalf("err = %v, want *ServerError \"stream not found: ...\"", err)
	}
	// The lane survives the error.
	if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
		t.Fatalf("publish after an ack error: %v", err)
	}
	// Fire-and-forget to an unknown stream is dropped silently.
	if err := c.Publish(ctx, "default", "nope", []byte("x"), WithAck(wire.AckNone)); err != nil {
		t.Fatalf("unacked publish: %v", err)
	}
}

func TestPipelinedAckedPublishes(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo", WithBuffer(16384))
	// 32 goroutines share the one publish lane, so their frames are
	// coalesced by the session's write queue; odd goroutines mix in
	// fire-and-forget publishes, which must keep their place too.
	const goroutines, each = 32, 320
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				var opts []PublishOption
				if g%2 == 1 && i%2 == 1 {
					opts = append(opts, WithAck(wire.AckNone))
				}
				if err := c.Publish(ctx, "default", "demo", []byte{byte(g), byte(i >> 8), byte(i)}, opts...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
	// Every event arrives, and each goroutine's events in its order.
	next := make([]int, goroutines)
	for n := range goroutines * each {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", n, err)
		}
		g, i := int(ev.Payload[0]), int(ev.Payload[1])<<8|int(ev.Payload[2])
		if i != next[g] {
			t.Fatalf("goroutine %d: event %d arrived, want %d", g, i, next[g])
		}
		next[g]++
	}
}

func TestFireAndForgetBatchOrder(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo")
	all := payloads("ff", 1000)
	for i := 0; i < len(all); i += 100 {
		if err := c.PublishBatch(ctx, "default", "demo", asBytes(all[i:i+100]), WithAck(wire.AckNone)); err != nil {
			t.Fatal(err)
		}
	}
	expectEvents(t, ctx, sub, all)
}

func TestSubscribeErrors(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	if _, err := c.Subscribe(ctx, "default", "nope"); !isServerError(err, "stream not found: ") {
		t.Errorf("unknown stream: err = %v", err)
	}
	_, err := c.Subscribe(ctx, "default", "demo", FromOffset(1_000_000))
	var ce *CursorError
	if !errors.As(err, &ce) || ce.Reason != wire.CursorInFuture || ce.Requested != 1_000_000 {
		t.Errorf("offset in the future: err = %v", err)
	}
	// The client is fine afterwards.
	sub := subscribe(t, ctx, c, "default", "demo")
	sub.Close()
}

func TestSubscribeFromEarliestReplays(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	want := payloads("old", 5)
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(want)); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, ctx, c, "default", "demo", FromEarliest())
	expectEvents(t, ctx, sub, want)
}

func TestAuthRefused(t *testing.T) {
	b := startBroker(t, testbroker.WithServerOptions(server.Options{Auth: refuseAll{}}))
	ctx := testCtx(t)
	_, err := Dial(ctx, b.Addr, Options{TLS: b.ClientTLS})
	if !isServerError(err, "auth failed") {
		t.Fatalf("err = %v, want *ServerError auth failed", err)
	}
}

type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, string, string) (*server.Identity, error) {
	return nil, errors.New("no")
}

func TestResubscribeAfterRestart(t *testing.T) {
	b, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo")
	if err := c.Publish(ctx, "default", "demo", []byte("before")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"before"})

	b.Restart()

	// Publishing redials; the subscription resubscribes on its own.
	got := make(chan string, 1)
	go func() {
		ev, err := sub.Next(ctx)
		if err == nil {
			got <- string(ev.Payload)
		}
		close(got)
	}()
	publishUntilReceived(t, ctx, c, sub, got)
}

// publishUntilReceived publishes "after" to default/demo every 20 ms until
// got yields a payload, which must be "after" with sub still running.
// Events published before a resubscribe are lost (at-most-once), hence the
// repeats.
func publishUntilReceived(t *testing.T, ctx context.Context, c *Client, sub *Subscription, got <-chan string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := c.Publish(ctx, "default", "demo", []byte("after")); err != nil && ctx.Err() == nil {
			t.Logf("publish during restart: %v", err)
		}
		select {
		case p, ok := <-got:
			if !ok || p != "after" || sub.Err() != nil {
				t.Fatalf("after restart got %q (ok=%v, err=%v)", p, ok, sub.Err())
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no event after restart (err %v)", sub.Err())
		}
	}
}

func TestReconnectDisabled(t *testing.T) {
	b, c, ctx := setup(t, Options{Reconnect: ReconnectPolicy{Disabled: true}})
	sub := subscribe(t, ctx, c, "default", "demo")
	b.Restart()
	if _, err := sub.Next(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Next after restart: %v, want ErrDisconnected", err)
	}
	if err := c.Publish(ctx, "default", "demo", []byte("x")); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Publish after restart: %v, want ErrDisconnected", err)
	}
}

func TestPublisherBatching(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo", WithBuffer(8192))
	for _, opts := range []PublisherOptions{
		{},
		{MaxBatch: 10, Linger: time.Millisecond},
		{NoAck: true, MaxBytes: 100},
	} {
		p := c.Publisher("default", "demo", opts)
		want := payloads("batched", 5000)
		for _, w := range want {
			if err := p.Publish(ctx, []byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatalf("%+v: Flush: %v", opts, err)
		}
		expectEvents(t, ctx, sub, want)
		if err := p.Publish(ctx, []byte("last")); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		expectEvents(t, ctx, sub, []string{"last"})
		if err := p.Publish(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Publish after Close: %v", err)
		}
	}
}

func TestPublisherReportsErrors(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	p := c.Publisher("default", "nope", PublisherOptions{})
	defer p.Close(ctx)
	for range 3 {
		if err := p.Publish(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); !isServerError(err, "stream not found") {
		t.Fatalf("Flush: %v, want stream not found", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v, want nil (errors are reported once)", err)
	}
}

func TestSubscriptionCloseReleasesBroker(t *testing.T) {
	b, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo")
	if n := b.Server.Stats().Subscriptions.Load(); n != 1 {
		t.Fatalf("broker subscriptions = %d, want 1", n)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	// The broker notices at its next write.
	for b.Server.Stats().Subscriptions.Load() != 0 {
		if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("broker kept the subscription")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	b := startBroker(t)
	ctx := testCtx(t)
	ignore := goleak.IgnoreCurrent()
	c, err := Dial(ctx, b.Addr, Options{TLS: b.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, ctx, c, "default", "demo")
	p := c.Publisher("default", "demo", PublisherOptions{Linger: time.Hour})
	_ = p.Publish(ctx, []byte("pending"))
	if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := sub.Next(ctx); err != nil && !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Client.Close: %v", err)
	}
	if err := c.Publish(ctx, "default", "demo", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, err := c.Subscribe(ctx, "default", "demo"); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if err := p.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Publisher.Flush after Close: %v", err)
	}
	// The broker's per-connection goroutines are its own business; only
	// ours must be gone.
	goleak.VerifyNone(t, ignore, goleak.IgnoreTopFunction("github.com/felixmq/felix/server.(*conn).serve"))
}

// A broker without BINARY_PUBLISH_ACKED gets JSON publish_batch with a
// request id, answered by publish_ok / publish_error. Our broker speaks
// both, so the test downgrades what the lanes believe the broker offers.
func TestJSONAckedPublishFallback(t *testing.T) {
	_, c, ctx := setup(t, Options{PublishConns: 1, PublishStreamsPerConn: 1})
	sess := c.lanes[0].live()
	if sess == nil {
		t.Fatal("no live publish session after Dial")
	}
	sess.flags = wire.OriginalV1Flags
	sub := subscribe(t, ctx, c, "default", "demo")
	want := payloads("json", 3)
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(want)); err != nil {
		t.Fatalf("JSON acked publish: %v", err)
	}
	expectEvents(t, ctx, sub, want)
	if err := c.Publish(ctx, "default", "nope", []byte("x")); !isServerError(err, "stream not found: ") {
		t.Fatalf("JSON publish to an unknown stream: %v", err)
	}
	if c.lanes[0].live() != sess {
		t.Error("the publish stream was replaced; publish_error should leave it open")
	}
}

func TestFrameTooLarge(t *testing.T) {
	_, c, ctx := setup(t, Options{MaxFrameBytes: 1024})
	err := c.Publish(ctx, "default", "demo", make([]byte, 2048))
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if err := c.Publish(ctx, "default", "demo", make([]byte, 100)); err != nil {
		t.Fatalf("small publish after a refused one: %v", err)
	}
}

// A subscriber that does not read loses nothing on the client: the reader
// stops at the buffer bound and flow control holds the rest back.
func TestSlowSubscriberLossless(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	sub := subscribe(t, ctx, c, "default", "demo", WithBuffer(1))
	want := payloads("slow", 3000)
	for i := 0; i < len(want); i += 50 {
		if err := c.PublishBatch(ctx, "default", "demo", asBytes(want[i:i+50])); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the reader hit the bound
	expectEvents(t, ctx, sub, want)
}

// SubscribeFunc delivers every event in order to its handler; the
// handler's error ends the subscription (Done, Err), and so does Close.
func TestSubscribeFunc(t *testing.T) {
	_, c, ctx := setup(t, Options{})
	errEnough := errors.New("enough")
	want := payloads("ev", 500)
	var got []string // written by the handler only, read after Done
	sub, err := c.SubscribeFunc(ctx, "default", "demo", func(ev Event) error {
		if ev.Namespace != "default" || ev.Stream != "demo" {
			t.Errorf("event %+v", ev)
		}
		got = append(got, string(ev.Payload))
		if len(got) == len(want) {
			return errEnough
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PublishBatch(ctx, "default", "demo", asBytes(want)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-ctx.Done():
		t.Fatalf("the handler got %d of %d events", len(got), len(want))
	}
	if !errors.Is(sub.Err(), errEnough) {
		t.Fatalf("Err = %v, want the handler's error", sub.Err())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %q, want %q (order)", i, got[i], want[i])
		}
	}
	sub.Close() // after the end: returns at once

	// A refused subscribe fails as Subscribe does; a nil handler is refused.
	if _, err := c.SubscribeFunc(ctx, "default", "nope", func(Event) error { return nil }); !isServerError(err, "stream not found") {
		t.Fatalf("SubscribeFunc on an unknown stream = %v", err)
	}
	if _, err := c.SubscribeFunc(ctx, "default", "demo", nil); err == nil {
		t.Fatal("SubscribeFunc accepted a nil handler")
	}

	// Close while the handler is busy waits for it to return.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sub, err = c.SubscribeFunc(ctx, "default", "demo", func(Event) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	<-entered
	closed := make(chan struct{})
	go func() { sub.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while the handler was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if !errors.Is(sub.Err(), ErrClosed) {
		t.Fatalf("Err after Close = %v, want ErrClosed", sub.Err())
	}
}

// A SubscribeFunc subscription resubscribes after the broker restarts, as
// a Next one does.
func TestSubscribeFuncResubscribesAfterRestart(t *testing.T) {
	b, c, ctx := setup(t, Options{})
	got := make(chan string, 1024)
	sub, err := c.SubscribeFunc(ctx, "default", "demo", func(ev Event) error {
		select {
		case got <- string(ev.Payload):
		default: // the test reads only what it needs
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	b.Restart()
	publishUntilReceived(t, ctx, c, sub, got)
}
