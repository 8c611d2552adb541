package client

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
)

// connLog records the connection events a client's callbacks receive.
type connLog struct {
	ch chan connNote // every event, in order
}

func newConnLog() *connLog { return &connLog{ch: make(chan connNote, 1024)} }

// hook sets opts' callbacks to record into l.
func (l *connLog) hook(opts *Options) {
	opts.OnDisconnect = func(e ConnEvent) { l.ch <- connNote{ev: e, lost: true} }
	opts.OnReconnect = func(e ConnEvent) { l.ch <- connNote{ev: e} }
}

// next returns the next event, failing the test if none comes.
func (l *connLog) next(t *testing.T, ctx context.Context) connNote {
	t.Helper()
	select {
	case n := <-l.ch:
		return n
	case <-ctx.Done():
		t.Fatal("no connection event")
		return connNote{}
	}
}

// dialLogged starts a broker and dials it with fastReconnect and the
// callbacks recording into a connLog.
func dialLogged(t *testing.T) (*testbroker.Broker, *Client, *connLog, context.Context) {
	t.Helper()
	b := startBroker(t)
	log := newConnLog()
	opts := Options{Reconnect: fastReconnect}
	log.hook(&opts)
	return b, dial(t, b, opts), log, testCtx(t)
}

// expectLostThenBack reads the next two events: the loss of connection
// kind/idx of the broker at addr, with its error, then its reconnection.
func (l *connLog) expectLostThenBack(t *testing.T, ctx context.Context, kind string, idx int, addr string) {
	t.Helper()
	if n := l.next(t, ctx); !n.lost || n.ev.Kind != kind || n.ev.Index != idx || n.ev.Addr != addr || n.ev.Err == nil {
		t.Fatalf("first event %+v (lost %v), want the loss of %s connection %d of %s with its error", n.ev, n.lost, kind, idx, addr)
	}
	if n := l.next(t, ctx); n.lost || n.ev.Kind != kind || n.ev.Index != idx || n.ev.Addr != addr || n.ev.Err != nil {
		t.Fatalf("second event %+v (lost %v), want the reconnection of %s connection %d", n.ev, n.lost, kind, idx)
	}
}

// subscribeInto subscribes to default/demo, sending each payload to got.
func subscribeInto(t *testing.T, ctx context.Context, c *Client, got chan<- string) {
	t.Helper()
	if _, err := c.SubscribeFunc(ctx, "default", "demo", func(ev Event) error {
		got <- string(ev.Payload)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitSubscriptions waits until the stream default/default/name of b's
// current engine has n subscriptions.
func waitSubscriptions(t *testing.T, b *testbroker.Broker, name string, n int) {
	t.Helper()
	testwait.Eventually(t, "subscriptions on the broker", func() bool {
		st, err := b.Broker.Stream("default", "default", name)
		return err == nil && len(st.Subscriptions()) >= n
	})
}

// A subscription's event connection lost to a broker restart is reported
// to OnDisconnect (its kind, index, the broker's address and why), then
// to OnReconnect once the subscription has redialed it; the subscription
// then receives what is published on the new broker.
func TestConnEventsSubscriptionAcrossRestart(t *testing.T) {
	b, c, log, ctx := dialLogged(t)
	got := make(chan string, 16)
	subscribeInto(t, ctx, c, got)
	idx := -1
	for _, s := range c.eventSlots {
		if s.current() != nil {
			idx = s.index
		}
	}

	b.Restart()

	log.expectLostThenBack(t, ctx, ConnKindEvent, idx, b.Addr)
	waitSubscriptions(t, b, "demo", 1)
	pub := dial(t, b, Options{})
	if err := pub.Publish(ctx, "default", "demo", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "after" {
		t.Fatalf("after the restart the subscription got %q", p)
	}
	// A redial may have reached the old broker while it drained, which
	// then closed that connection too: any further events are more
	// pairs of the same connection.
	for {
		select {
		case n := <-log.ch:
			if n.ev.Kind != ConnKindEvent || n.ev.Index != idx {
				t.Errorf("event %+v (lost %v) of another connection", n.ev, n.lost)
			}
			continue
		default:
		}
		break
	}
	if n := c.DroppedConnEvents(); n != 0 {
		t.Errorf("DroppedConnEvents = %d, want 0", n)
	}
}

// A publish connection is redialed (and reported) at the next publish
// after its loss, on the connection the stream's lane uses.
func TestConnEventsPublishRedial(t *testing.T) {
	b, c, log, ctx := dialLogged(t)
	if err := c.Publish(ctx, "default", "demo", []byte("before")); err != nil {
		t.Fatal(err)
	}
	idx := c.laneFor("default", "demo").slot.index

	b.Restart()
	publishAfterRestart(t, ctx, c, "demo", []byte("after"))

	log.expectLostThenBack(t, ctx, ConnKindPublish, idx, b.Addr)
}

// Close reports nothing: the connections it closes (publish, event and
// cache ones, all in use) are not lost.
func TestConnEventsNotOnClose(t *testing.T) {
	b := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/kv"))
	var calls atomic.Int64
	c := dial(t, b, Options{
		OnDisconnect: func(ConnEvent) { calls.Add(1) },
		OnReconnect:  func(ConnEvent) { calls.Add(1) },
	})
	ctx := testCtx(t)
	sub := subscribe(t, ctx, c, "default", "demo")
	if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, ctx, sub, []string{"x"})
	if _, err := c.Cache("default", "kv").Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has waited for the callbacks' goroutine: none can come now.
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d connection callbacks for a client's own Close, want none", n)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// A callback that blocks holds up no connection: while it blocks, every
// subscription resumes after a broker restart and receives events; the
// events beyond ConnEventBuffer are dropped, and every one the client
// generated (each logged as it is reported) is either delivered or
// counted as dropped.
func TestConnEventsBlockedCallback(t *testing.T) {
	const subs = 40 // one per event connection: at least 2*subs events, more than ConnEventBuffer+1
	b := startBroker(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var delivered atomic.Int64
	var seqMu sync.Mutex
	var seq []connNote // the events delivered, in order
	record := func(lost bool) func(ConnEvent) {
		return func(e ConnEvent) {
			seqMu.Lock()
			seq = append(seq, connNote{ev: e, lost: lost})
			seqMu.Unlock()
			delivered.Add(1)
			<-release
		}
	}
	rec := &logRecorder{}
	c := dial(t, b, Options{Reconnect: fastReconnect, EventConns: subs, OnDisconnect: record(true), OnReconnect: record(false), Logger: slog.New(rec)})
	t.Cleanup(unblock) // before the client's Close, which waits for the callback
	ctx := testCtx(t)
	got := make(chan string, subs)
	for range subs {
		subscribeInto(t, ctx, c, got)
	}

	b.Restart()

	testwait.Eventually(t, "a callback under way", func() bool { return delivered.Load() == 1 })
	waitSubscriptions(t, b, "demo", subs)
	pub := dial(t, b, Options{})
	if err := pub.Publish(ctx, "default", "demo", []byte("after")); err != nil {
		t.Fatal(err)
	}
	for range subs {
		if p := <-got; p != "after" {
			t.Fatalf("a subscription got %q after the restart", p)
		}
	}
	// Every subscription is on the new broker, so every event is out:
	// each connection lost once or more (a redial may reach the old
	// broker while it drains, which then closes that connection too),
	// and redialed as often.
	var lost, back int64
	for _, l := range rec.lines(0, slog.LevelDebug) {
		switch l {
		case "DEBUG felix connection lost; redialing":
			lost++
		case "INFO felix reconnected":
			back++
		}
	}
	if lost != back || lost < subs {
		t.Fatalf("%d losses and %d reconnections logged, want as many, at least %d", lost, back, subs)
	}

	unblock()
	total := lost + back
	testwait.Eventually(t, "every event delivered or dropped", func() bool {
		return delivered.Load()+int64(c.DroppedConnEvents()) >= total
	})
	d, n := int64(c.DroppedConnEvents()), delivered.Load()
	// One event was in the blocked callback, at most ConnEventBuffer
	// queued behind it, and some were dropped.
	if n+d != total || d == 0 || n > ConnEventBuffer+1 {
		t.Fatalf("delivered %d, dropped %d; want %d in all, some dropped, at most %d delivered", n, d, total, ConnEventBuffer+1)
	}
	// Drops keep each connection's events paired: every reconnect
	// delivered follows its disconnect, and every disconnect delivered
	// is followed by its reconnect (every connection is back).
	seqMu.Lock()
	defer seqMu.Unlock()
	down := map[int]bool{}
	for i, e := range seq {
		if e.lost == down[e.ev.Index] {
			t.Fatalf("event %d: %s connection %d (lost %v) while its last delivered event was lost=%v: unpaired (dropped %d)",
				i, e.ev.Kind, e.ev.Index, e.lost, down[e.ev.Index], d)
		}
		down[e.ev.Index] = e.lost
	}
	for idx, isDown := range down {
		if isDown {
			t.Fatalf("event connection %d: OnDisconnect delivered, its OnReconnect dropped (dropped %d)", idx, d)
		}
	}
}

// The queue in front of the callbacks holds ConnEventBuffer events and
// counts each one beyond exactly, keeping each connection's events
// paired: a disconnect is queued only with room left for its reconnect,
// and the reconnect of a dropped disconnect is dropped too.
func TestConnEventsDropCount(t *testing.T) {
	b := startBroker(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var mu sync.Mutex
	var seq []connNote
	record := func(lost bool) func(ConnEvent) {
		return func(e ConnEvent) {
			mu.Lock()
			seq = append(seq, connNote{ev: e, lost: lost})
			first := len(seq) == 1
			mu.Unlock()
			if first {
				entered <- struct{}{}
				<-release
			}
		}
	}
	c := dial(t, b, Options{OnDisconnect: record(true), OnReconnect: record(false)})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the client's Close, which waits for the callback
	ev := func(i int) ConnEvent { return ConnEvent{Kind: ConnKindPublish, Index: i, Addr: b.Addr} }
	queued := []bool{c.notifyLost(ev(0))}
	<-entered // the callback holds the first disconnect; its reconnect's room is kept
	const more = 100
	for i := 1; i <= more; i++ {
		queued = append(queued, c.notifyLost(ev(i)))
	}
	// k more disconnects fit while k queued + (k+1) reserved + 2 <= ConnEventBuffer.
	accepted := (ConnEventBuffer-3)/2 + 1
	if d := c.DroppedConnEvents(); d != uint64(more-accepted) {
		t.Fatalf("DroppedConnEvents = %d after the disconnects, want %d", d, more-accepted)
	}
	for i, q := range queued {
		c.notifyBack(ev(i), q)
	}
	// Every reconnect whose disconnect was queued fits in its reserved
	// room; the others are dropped.
	wantDropped := uint64(2 * (more - accepted))
	if d := c.DroppedConnEvents(); d != wantDropped {
		t.Fatalf("DroppedConnEvents = %d after the reconnects, want %d", d, wantDropped)
	}
	unblock()
	want := 2 * (1 + accepted)
	testwait.Eventually(t, "the queued events delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seq) == want
	})
	mu.Lock()
	defer mu.Unlock()
	down := map[int]bool{}
	for i, n := range seq {
		if n.lost == down[n.ev.Index] {
			t.Fatalf("event %d of connection %d (lost %v) is unpaired", i, n.ev.Index, n.lost)
		}
		down[n.ev.Index] = n.lost
	}
	for idx, d := range down {
		if d {
			t.Fatalf("connection %d: disconnect delivered without its reconnect", idx)
		}
	}
	if d := c.DroppedConnEvents(); d != wantDropped {
		t.Fatalf("DroppedConnEvents = %d after delivery, want %d", d, wantDropped)
	}
}
