package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

// fastReconnect redials within milliseconds, so a restart is survived
// quickly.
var fastReconnect = ReconnectPolicy{MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}

// startKeptQueueBroker is startQueueTestBroker with the groups' state
// kept on disk too, so acks survive a Restart, and a stateless reset key
// kept across restarts, as `felix serve` keeps one in its data dir: the
// restarted broker tells clients at once that their old connections are
// gone.
func startKeptQueueBroker(t *testing.T) *testbroker.Broker {
	t.Helper()
	key, err := transport.LoadOrCreateResetKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return startBroker(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/jobs"),
		testbroker.WithServerOptions(server.Options{
			Queues:    server.QueueOptions{TickInterval: 10 * time.Millisecond, StateDir: t.TempDir()},
			Transport: transport.Options{StatelessResetKey: key},
		}))
}

// keptCache declares the durable cache default/default/kept, logged in
// dir, on b's current cache store (again after every Restart).
func keptCache(t *testing.T, b *testbroker.Broker, dir string) {
	t.Helper()
	scope := cache.Scope{Tenant: "default", Namespace: "default", Cache: "kept"}
	if _, err := b.Caches.CreateDurable(scope, cache.Config{}, cache.DurableOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
}

// startRestartRig starts startKeptQueueBroker with the durable cache
// default/default/kept and dials it with fastReconnect; restart restarts
// the broker on the same data (the cache declared again).
func startRestartRig(t *testing.T) (restart func(), c *Client, ctx context.Context) {
	t.Helper()
	b := startKeptQueueBroker(t)
	dir := t.TempDir()
	keptCache(t, b, dir)
	restart = func() {
		t.Helper()
		b.Restart()
		keptCache(t, b, dir)
	}
	return restart, dial(t, b, Options{Reconnect: fastReconnect}), testCtx(t)
}

// endPayload marks the last event a test publishes to jobs.
const endPayload = "end"

// subscribeJobs subscribes to default/jobs from its earliest offset,
// hands every event but the end marker to record (on the subscription's
// goroutine), serves default/echo on c, and returns the subscription and
// a function that publishes the end marker and waits for it to arrive:
// then every event stored before it has been recorded.
func subscribeJobs(t *testing.T, ctx context.Context, c *Client, record func(Event)) (*Subscription, func()) {
	t.Helper()
	end := make(chan struct{})
	sub, err := c.SubscribeFunc(ctx, "default", "jobs", func(ev Event) error {
		if !ev.HasOffset {
			return errors.New("event without offset")
		}
		if string(ev.Payload) == endPayload {
			close(end)
			return nil
		}
		record(ev)
		return nil
	}, FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	svc, err := c.Serve(ctx, "default", "echo", echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return sub, func() {
		t.Helper()
		if err := c.Publish(ctx, "default", "jobs", []byte(endPayload)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-end:
		case <-ctx.Done():
			t.Fatalf("the end marker never reached the subscription: missed %d, err %v", sub.Missed(), sub.Err())
		}
	}
}

// One Client with everything active at once across a broker restart
// (same data dir): a subscription from the earliest offset of a durable
// stream, a queue consumer holding prefetched and in-flight deliveries,
// a Serve responder, a batching Publisher and durable cache requests.
// Each must go on as documented: the subscription delivers every offset
// once, in order, with nothing missed; no acked record is delivered
// again and every record is eventually acked; the service answers again;
// the cache keeps what was acknowledged; Close leaves no goroutine.
func TestHunt13EverythingAcrossRestart(t *testing.T) {
	restart, c, ctx := startRestartRig(t)

	var mu sync.Mutex
	var got []uint64
	arrived := make(chan struct{}, 1)
	sub, awaitEnd := subscribeJobs(t, ctx, c, func(ev Event) {
		mu.Lock()
		got = append(got, ev.Offset)
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	received := func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	kv := c.Cache("default", "kept")
	if _, err := kv.Put(ctx, "before", []byte("v1")); err != nil {
		t.Fatal(err)
	}

	pub := c.Publisher("default", "jobs", PublisherOptions{MaxBatch: 4})
	const before, after = 20, 20
	for i := range before {
		if err := pub.Publish(ctx, binary.BigEndian.AppendUint64(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The consumer takes 3 deliveries, acks one, holds two in flight; more
	// sit in its prefetch buffer.
	co, err := c.Consumer(ctx, "default", "jobs", "g", WithPrefetch(8))
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	var held []*Message
	for range 3 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, m)
	}
	if err := held[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	acked[held[0].Offset] = true
	for len(received()) < before {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("received %v before the restart", received())
		}
	}

	restart()

	// The held deliveries belong to the old broker: acking them now fails
	// or is refused, never hangs.
	for _, m := range held[1:] {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := m.Ack(actx)
		cancel()
		if err == nil {
			acked[m.Offset] = true
		} else if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ack of a delivery of the old broker hung: %v", err)
		}
	}
	co.Close()

	for i := before; i < before+after; i++ {
		if err := pub.Publish(ctx, binary.BigEndian.AppendUint64(nil, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	// The flush may report batches lost with the old connection; republish
	// none of them (the stream's content is what the subscription checks).
	if err := pub.Close(ctx); err != nil {
		t.Logf("publisher close: %v", err)
	}

	// The cache kept its acknowledged write.
	if v, ok, err := kv.Get(ctx, "before"); err != nil || !ok || string(v) != "v1" {
		t.Fatalf("cache get after restart: %q %v %v", v, ok, err)
	}

	// The service answers again.
	for {
		out, err := c.Request(ctx, "default", "echo", []byte("ping"))
		if err == nil {
			if string(out) != "ping" {
				t.Fatalf("echo answered %q", out)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("service never answered after the restart: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}

	// Every record of the stream is consumed to an ack; acked ones never
	// come back.
	awaitEnd()
	tail := uint64(len(received()))
	co2, err := c.Consumer(ctx, "default", "jobs", "g", WithPrefetch(8))
	if err != nil {
		t.Fatal(err)
	}
	defer co2.Close()
	for {
		st, err := c.QueueStats(ctx, "default", "jobs", "g")
		if err != nil {
			t.Fatal(err)
		}
		if st.Lag == 0 && st.InFlight == 0 && st.Pending == 0 {
			if uint64(len(acked)) < tail {
				t.Fatalf("group done with %d of %d records acked: %+v", len(acked), tail, st)
			}
			break
		}
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := co2.Next(nctx)
		cancel()
		if err != nil {
			t.Fatalf("next: %v; stats %+v, acked %d", err, st, len(acked))
		}
		if acked[m.Offset] {
			t.Fatalf("record %d delivered again (attempt %d) after its Ack returned nil", m.Offset, m.Attempt)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		acked[m.Offset] = true
	}

	all := received()
	want := make([]uint64, len(all))
	for i := range want {
		want[i] = uint64(i)
	}
	if !slices.Equal(all, want) || sub.Missed() != 0 || sub.Err() != nil {
		t.Fatalf("subscription delivered %v, missed %d, err %v; want 0..%d once each", all, sub.Missed(), sub.Err(), len(all)-1)
	}
	if len(all) < before {
		t.Fatalf("subscription delivered %d events, want at least %d", len(all), before)
	}
	t.Logf("delivered %d events, acked %d records", len(all), len(acked))
}

// hang reports whether err is a call that outlived its own deadline: the
// calls below each get a few seconds, far more than a restart takes, so
// running out means the call was stuck.
func hang(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// Publishes, cache writes and requests running while the broker restarts
// (same data dir) each end within their context with an answer or an
// error; every publish acked is delivered to a subscription from the
// earliest offset, exactly once and in order (the subscription resumes
// by offset); the durable cache holds the last acknowledged write or a
// later one.
func TestHunt13LoadAcrossRestart(t *testing.T) {
	restart, c, ctx := startRestartRig(t)

	type ev struct {
		off uint64
		val uint64
	}
	var mu sync.Mutex
	var evs []ev
	sub, awaitEnd := subscribeJobs(t, ctx, c, func(e Event) {
		mu.Lock()
		evs = append(evs, ev{e.Offset, binary.BigEndian.Uint64(e.Payload)})
		mu.Unlock()
	})
	kv := c.Cache("default", "kept")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ackedPubs []uint64
	var lastPut, lastTried uint64
	fail := make(chan string, 16)
	report := func(format string, args ...any) {
		select {
		case fail <- fmt.Sprintf(format, args...):
		default:
		}
	}
	wg.Go(func() { // acked publishes
		for i := uint64(0); i < 100_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Publish(cctx, "default", "jobs", binary.BigEndian.AppendUint64(nil, i))
			cancel()
			if err == nil {
				mu.Lock()
				ackedPubs = append(ackedPubs, i)
				mu.Unlock()
			} else if hang(err) {
				report("publish %d: %v", i, err)
				return
			}
		}
	})
	wg.Go(func() { // cache writes
		for i := uint64(1); i < 100_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			lastTried = i
			mu.Unlock()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := kv.Put(cctx, "k", binary.BigEndian.AppendUint64(nil, i))
			cancel()
			if err == nil {
				mu.Lock()
				lastPut = i
				mu.Unlock()
			} else if hang(err) {
				report("cache put %d: %v", i, err)
				return
			}
		}
	})
	wg.Go(func() { // requests
		for i := 0; i < 100_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Request(cctx, "default", "echo", []byte("x"))
			cancel()
			if hang(err) && !errors.Is(err, ErrRequestTimeout) {
				report("request: %v", err)
				return
			}
		}
	})
	progress := func(n int) {
		for {
			mu.Lock()
			k := len(ackedPubs)
			mu.Unlock()
			if k >= n {
				return
			}
			select {
			case msg := <-fail:
				t.Fatal(msg)
			case <-ctx.Done():
				t.Fatalf("only %d publishes acked", k)
			case <-time.After(time.Millisecond):
			}
		}
	}
	progress(20)
	restart()
	mu.Lock()
	n := len(ackedPubs)
	mu.Unlock()
	progress(n + 20)
	close(stop)
	wg.Wait()
	select {
	case msg := <-fail:
		t.Fatal(msg)
	default:
	}
	awaitEnd()
	mu.Lock()
	defer mu.Unlock()
	got := map[uint64]int{}
	for i, e := range evs {
		if e.off != uint64(i) {
			t.Fatalf("event %d has offset %d (missed %d)", i, e.off, sub.Missed())
		}
		got[e.val]++
	}
	for _, v := range ackedPubs {
		if got[v] != 1 {
			t.Fatalf("acked publish %d delivered %d times", v, got[v])
		}
	}
	if sub.Missed() != 0 {
		t.Fatalf("missed %d", sub.Missed())
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, ok, err := kv.Get(cctx, "k")
	if err != nil || !ok {
		t.Fatalf("cache get: %v %v", ok, err)
	}
	if x := binary.BigEndian.Uint64(v); x < lastPut || x > lastTried {
		t.Fatalf("cache holds %d; last acked put %d, last tried %d", x, lastPut, lastTried)
	}
	t.Logf("%d events, %d acked publishes, cache %d/%d", len(evs), len(ackedPubs), lastPut, lastTried)
}

// A broker shut down while a client redials tells every connection it
// holds, also those that finished their handshake after Serve stopped
// accepting (transport.Listener.CloseWithError), and refuses handshakes
// under way. Before, quic-go's transport close destroyed those without a
// CONNECTION_CLOSE, and the client waited for an idle timeout (6 s for an
// event connection, 30 s otherwise) or its RequestTimeout. Calls racing
// 30 restarts, without a stateless reset key to cover for the broker:
// after each restart a call succeeds within 3 s, and no call waits out
// its 3 s deadline while a broker is up.
func TestHunt13ShutdownDropsLateConnectionsSilently(t *testing.T) {
	b := startBroker(t) // no stateless reset key
	c := dial(t, b, Options{Reconnect: fastReconnect, CacheConns: 1, CacheStreamsPerConn: 1})
	ctx := testCtx(t)
	call := func() error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := c.QueueStats(cctx, "default", "jobs", "g")
		var se *ServerError
		if errors.As(err, &se) {
			return nil // an answer (this broker has no such stream)
		}
		return err
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := call(); hang(err) {
				done <- err
				return
			}
		}
	}()
	for i := range 30 {
		b.Restart()
		for try := 0; ; try++ {
			err := call()
			if err == nil {
				break
			}
			if hang(err) || try == 100 {
				close(stop)
				t.Fatalf("restart %d: no call answered by the new broker: %v", i, err)
			}
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("a call hung across a restart: %v", err)
	}
}
