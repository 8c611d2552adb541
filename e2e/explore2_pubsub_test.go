package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// With a positive writer coalescing delay (--event-batch-max-delay), every
// event of several concurrent publishers reaches the subscriber once, each
// publisher's in its order, and a lone event on an idle stream waits about
// the delay, not longer.
func TestExplore2WriteMaxDelayOrderAndBound(t *testing.T) {
	const delay = 150 * time.Millisecond
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/demo"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block, QueueCapacity: 64, WriteMaxDelay: delay}))
	c := dial(t, tb, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	// A lone event: delivered after about the delay.
	start := time.Now()
	if err := c.Publish(ctx, "default", "demo", []byte("lone")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatal(err)
	}
	lat := time.Since(start)
	t.Logf("lone event latency %v with delay %v", lat, delay)
	if lat > delay+2*time.Second {
		t.Errorf("lone event took %v with a %v coalescing delay", lat, delay)
	}

	const pubs, per = 4, 500
	var wg sync.WaitGroup
	for p := range pubs {
		pc := dial(t, tb, client.Options{})
		wg.Go(func() {
			for i := range per {
				var b [16]byte
				binary.BigEndian.PutUint64(b[:], uint64(p))
				binary.BigEndian.PutUint64(b[8:], uint64(i))
				opt := client.WithAck(wire.AckPerMessage)
				if i%2 == 1 {
					opt = client.WithAck(wire.AckNone)
				}
				if err := pc.Publish(ctx, "default", "demo", b[:], opt); err != nil {
					t.Errorf("publisher %d event %d: %v", p, i, err)
					return
				}
			}
		})
	}
	next := make([]uint64, pubs)
	for n := 0; n < pubs*per; n++ {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", n, err)
		}
		p, i := binary.BigEndian.Uint64(ev.Payload), binary.BigEndian.Uint64(ev.Payload[8:])
		if i != next[p] {
			t.Fatalf("publisher %d: got event %d, want %d", p, i, next[p])
		}
		next[p]++
	}
	wg.Wait()
}

// Deleting a stream while it has subscribers: the broker ends the event
// stream cleanly, the SDK resubscribes and the broker answers "stream not
// found", which ends the subscription (Err says so). With auto-create the
// resubscribe creates the stream again, so the subscription lives on, on a
// new empty stream (logged, not asserted).
func TestExplore2DeleteStreamWhileSubscribed(t *testing.T) {
	for _, autoCreate := range []bool{false, true} {
		t.Run(fmt.Sprintf("autocreate=%v", autoCreate), func(t *testing.T) {
			tb := testbroker.Start(t, testbroker.WithStreams("default/default/demo"),
				testbroker.WithBrokerOptions(broker.Options{AutoCreateStreams: autoCreate}))
			c := dial(t, tb, client.Options{Reconnect: client.ReconnectPolicy{MaxBackoff: 50 * time.Millisecond}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sub, err := c.Subscribe(ctx, "default", "demo")
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			var handled atomic.Int64
			fsub, err := c.SubscribeFunc(ctx, "default", "demo", func(client.Event) error { handled.Add(1); return nil })
			if err != nil {
				t.Fatal(err)
			}
			defer fsub.Close()
			if err := c.Publish(ctx, "default", "demo", []byte("before")); err != nil {
				t.Fatal(err)
			}
			if _, err := sub.Next(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tb.Broker.DeleteStream("default", "default", "demo"); err != nil {
				t.Fatal(err)
			}
			// Without auto-create the subscription must end (ctx bounds
			// the wait); with it, it is watched for 5 s.
			wctx, wcancel := ctx, context.CancelFunc(func() {})
			if autoCreate {
				wctx, wcancel = context.WithTimeout(ctx, 5*time.Second)
			}
			defer wcancel()
			select {
			case <-sub.Done():
				t.Logf("Subscribe ended: %v", sub.Err())
				var se *client.ServerError
				if !errors.As(sub.Err(), &se) || !strings.HasPrefix(se.Message, "stream not found") {
					t.Errorf("subscription to a deleted stream ended with %v, want the broker's stream not found", sub.Err())
				}
			case <-wctx.Done():
				_, serr := tb.Broker.Stream("default", "default", "demo")
				t.Logf("Subscribe still running after the delete (stream lookup now: %v)", serr)
				if !autoCreate {
					t.Error("subscription to a deleted stream neither ended nor reported")
				}
			}
			select {
			case <-fsub.Done():
				t.Logf("SubscribeFunc ended: %v", fsub.Err())
			case <-time.After(time.Second):
				t.Logf("SubscribeFunc still running")
			}
			if autoCreate {
				if _, err := tb.Broker.Stream("default", "default", "demo"); err == nil {
					t.Logf("the deleted stream exists again (recreated by the resubscribe)")
				}
			}
		})
	}
}

// SubscribeFunc on a durable stream across a SIGKILL of the broker and a
// restart: the handler sees every stored offset once, in order, with no gap
// and no duplicate.
func TestExplore2SubscribeFuncAcrossSIGKILL(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	args := []string{"--durable-stream", "default/default/crash", "--fsync", "always"}
	p := startFelix(t, bin, addr, dataDir, args...)
	pub := dialProc(t, addr, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc := dialResuming(t, ctx, addr, dataDir)
	type rec struct{ off, seq uint64 }
	var mu sync.Mutex
	var got []rec
	var bad error
	sub, err := sc.SubscribeFunc(ctx, "default", "crash", func(ev client.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if !ev.HasOffset {
			bad = errors.New("event without offset")
		} else if len(got) > 0 && ev.Offset != got[len(got)-1].off+1 {
			bad = fmt.Errorf("offset %d after %d", ev.Offset, got[len(got)-1].off)
		} else if len(got) == 0 && ev.Offset != 0 {
			bad = fmt.Errorf("first offset %d", ev.Offset)
		}
		got = append(got, rec{ev.Offset, binary.BigEndian.Uint64(ev.Payload)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var seqNo uint64
	publish := func(c *client.Client, n int) (acked int) {
		for range n {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			err := c.Publish(pctx, "default", "crash", seq(seqNo, 16))
			pcancel()
			seqNo++
			if err != nil {
				return acked
			}
			acked++
		}
		return acked
	}
	// Publish while the broker is killed part-way.
	killed := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		close(killed)
	}()
	a1 := publish(pub, 100000)
	<-killed
	<-p.done
	pub.Close()
	p = startFelix(t, bin, addr, dataDir, args...)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGTERM); <-p.done }()
	pub = dialProc(t, addr, dataDir)
	defer pub.Close()
	a2 := publish(pub, 300)
	if a2 != 300 {
		t.Fatalf("%d of 300 publishes after the restart acked", a2)
	}
	// The last acked publish must reach the handler.
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		n, b := len(got), bad
		var last rec
		if n > 0 {
			last = got[n-1]
		}
		mu.Unlock()
		if b != nil {
			t.Fatal(b)
		}
		if n > 0 && last.seq == seqNo-1 {
			t.Logf("%d acked before the kill, %d after; handler saw offsets 0..%d (%d events)", a1, a2, last.off, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler saw %d events (last %+v), want through seq %d; sub err %v", n, last, seqNo-1, sub.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One batching Publisher shared by many goroutines, against a subscriber
// whose handler is stalled, under drop_new and block: no deadlock, every
// goroutine's events arrive in its order, and under drop_new what is
// missing is exactly what the broker counted as dropped, and the gaps the
// subscriber saw in the offsets are what its Missed counts.
func TestExplore2PublisherManyGoroutinesPolicies(t *testing.T) {
	for _, policy := range []broker.QueuePolicy{broker.DropNew, broker.Block} {
		t.Run(policy.String(), func(t *testing.T) {
			tb := testbroker.Start(t, testbroker.WithStreams("default/default/p"),
				testbroker.WithBrokerOptions(broker.Options{QueuePolicy: policy, QueueCapacity: 16}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			subc := dial(t, tb, client.Options{EventConns: 1, Transport: transport.Options{
				InitialStreamReceiveWindow: 16 << 10, MaxStreamReceiveWindow: 16 << 10,
				InitialConnectionReceiveWindow: 32 << 10, MaxConnectionReceiveWindow: 32 << 10}})
			gate := make(chan struct{})
			const gor, per = 8, 300
			var mu sync.Mutex
			next := make([]uint64, gor)
			var received int
			var lastOffset uint64
			var orderErr error
			sub, err := subc.SubscribeFunc(ctx, "default", "p", func(ev client.Event) error {
				<-gate
				g, i := binary.BigEndian.Uint64(ev.Payload), binary.BigEndian.Uint64(ev.Payload[8:])
				mu.Lock()
				defer mu.Unlock()
				if !ev.HasOffset && orderErr == nil {
					orderErr = errors.New("event without offset")
				}
				lastOffset = ev.Offset
				if i < next[g] && orderErr == nil {
					orderErr = fmt.Errorf("goroutine %d: event %d after %d", g, i, next[g]-1)
				}
				if policy == broker.Block && i != next[g] && orderErr == nil {
					orderErr = fmt.Errorf("goroutine %d: event %d, want %d (block loses nothing)", g, i, next[g])
				}
				next[g] = i + 1
				received++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			stream, _ := tb.Broker.Stream("default", "default", "p")
			waitSubscriptions(t, stream, 1)

			pc := dial(t, tb, client.Options{})
			p := pc.Publisher("default", "p", client.PublisherOptions{MaxBatch: 4})
			var wg sync.WaitGroup
			for g := range gor {
				wg.Go(func() {
					for i := range per {
						b := make([]byte, 512)
						binary.BigEndian.PutUint64(b, uint64(g))
						binary.BigEndian.PutUint64(b[8:], uint64(i))
						if err := p.Publish(ctx, b); err != nil {
							t.Errorf("goroutine %d publish %d: %v", g, i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			// drop_new: Flush must not wait for the stalled subscriber; the
			// deadline only bounds a Flush that does (generous: a loaded
			// machine may take a while to write 2400 publishes). block:
			// Flush is expected to wait, so a short deadline ends it.
			flushWait := 10 * time.Second
			if policy == broker.Block {
				flushWait = time.Second
			}
			fctx, fcancel := context.WithTimeout(ctx, flushWait)
			ferr := p.Flush(fctx)
			fcancel()
			t.Logf("Flush with the subscriber stalled: %v", ferr)
			if policy == broker.DropNew && ferr != nil {
				t.Errorf("drop_new: Flush = %v; a stalled subscriber must not hold publishers", ferr)
			}
			if policy == broker.Block && !errors.Is(ferr, context.DeadlineExceeded) {
				t.Logf("block: Flush did not wait for the stalled subscriber (%v)", ferr)
			}
			ss := subStats(stream, sub.ID())
			t.Logf("before release: %+v", ss)
			close(gate)
			if err := p.Close(ctx); err != nil {
				t.Fatalf("Publisher.Close: %v", err)
			}
			total := gor * per
			var n int
			for deadline := time.Now().Add(30 * time.Second); ; {
				ss = subStats(stream, sub.ID())
				mu.Lock()
				var oe error
				n, oe = received, orderErr
				mu.Unlock()
				if oe != nil {
					t.Fatal(oe)
				}
				if uint64(n)+ss.Dropped == uint64(total) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("received %d + dropped %d != %d published (%+v)", n, ss.Dropped, total, ss)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("after: received %d, dropped %d of %d", n, ss.Dropped, total)
			if policy == broker.Block && ss.Dropped != 0 {
				t.Fatalf("block dropped %d", ss.Dropped)
			}
			if policy == broker.DropNew && ss.Dropped == 0 {
				t.Fatalf("drop_new dropped nothing with a stalled subscriber (test setup)")
			}
			// One more event after the drops: the subscriber now sees every
			// dropped event as a gap in the offsets, and counts it.
			b := make([]byte, 512)
			binary.BigEndian.PutUint64(b[8:], per)
			if err := pc.Publish(ctx, "default", "p", b); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				n := received
				mu.Unlock()
				if n == total+1-int(ss.Dropped) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the last event did not arrive (%d received)", n)
				}
			}
			mu.Lock()
			gaps := lastOffset + 1 - uint64(received)
			mu.Unlock()
			if m := sub.Missed(); m != gaps || m != ss.Dropped {
				t.Fatalf("Missed = %d; the broker dropped %d, the offsets delivered (last %d, %d events) have %d gaps", m, ss.Dropped, lastOffset, received, gaps)
			}
		})
	}
}

// A batching Publisher (acked, then NoAck) and a SubscribeFunc on a durable
// stream across several 2 s token lifetimes, with a TokenSource.
func TestExplore2PublisherAcrossTokenExpiry(t *testing.T) {
	for _, tc := range []struct{ noAck, hot bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		noAck := tc.noAck
		t.Run(fmt.Sprintf("noack=%v,hot=%v", noAck, tc.hot), func(t *testing.T) {
			tb, sg := tokenExpiryBroker(t)
			src := func(context.Context) (string, error) { return shortToken(t, sg, 2*time.Second), nil }
			c := dial(t, tb, client.Options{TenantID: "t1", RequestTimeout: 5 * time.Second, TokenSource: src})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var mu sync.Mutex
			seen := map[uint64]int{}
			var lastOff uint64
			var offErr error
			var n int
			sub, err := c.SubscribeFunc(ctx, "ns", "jobs", func(ev client.Event) error {
				mu.Lock()
				defer mu.Unlock()
				if n > 0 && ev.Offset != lastOff+1 && offErr == nil {
					offErr = fmt.Errorf("offset %d after %d", ev.Offset, lastOff)
				}
				lastOff = ev.Offset
				n++
				seen[binary.BigEndian.Uint64(ev.Payload)]++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			p := c.Publisher("ns", "jobs", client.PublisherOptions{NoAck: noAck})
			var sent uint64
			var failed []error
			burst, pause := 20, 10*time.Millisecond
			if tc.hot { // publishing all the time: expiry hits frames in flight
				burst, pause = 200, time.Millisecond
			}
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && sent < 1_500_000; {
				for range burst {
					if err := p.Publish(ctx, seq(sent, 8)); err != nil {
						t.Fatal(err)
					}
					sent++
				}
				if !tc.hot {
					if err := p.Flush(ctx); err != nil {
						failed = append(failed, err)
					}
				}
				time.Sleep(pause)
			}
			if err := p.Close(ctx); err != nil {
				failed = append(failed, err)
			}
			// The last batch must arrive; then count.
			stream, _ := tb.Broker.Stream("t1", "ns", "jobs")
			for deadline := time.Now().Add(10 * time.Second); ; {
				mu.Lock()
				got := n
				mu.Unlock()
				if uint64(got) >= stream.Stats().Published || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if offErr != nil {
				t.Error(offErr)
			}
			var missing, dup int
			for s := range sent {
				switch seen[s] {
				case 0:
					missing++
				case 1:
				default:
					dup++
				}
			}
			t.Logf("sent %d, stored %d, handler saw %d; missing %d, duplicated %d; flush errors %d: %v; expiries %d",
				sent, stream.Stats().Published, n, missing, dup, len(failed), failed, tb.Server.Stats().TokenExpiries.Load())
			if !noAck && missing > 0 && len(failed) == 0 {
				t.Errorf("%d acked-publisher events missing without any error reported", missing)
			}
			if sub.Err() != nil {
				t.Errorf("subscription ended: %v", sub.Err())
			}
		})
	}
}

// A subscription to an in-memory stream outlives its expiring tokens
// without a gap: the broker sends it offsets (CapMemOffsets), so after each
// expiry reset it resumes at the next offset from the stream's replay ring.
// Every event arrives exactly once, in order, with nothing counted missed.
func TestInMemorySubscriptionResumesAcrossTokenExpiry(t *testing.T) {
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Keys: sg.KeySet(), Leeway: -1}
	tb := testbroker.Start(t, testbroker.WithStreams("t1/ns/jobs"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{Verifier: v}}))
	sc := dial(t, tb, client.Options{TenantID: "t1", TokenSource: func(context.Context) (string, error) {
		return shortToken(t, sg, 2*time.Second), nil
	}})
	pc := dial(t, tb, client.Options{TenantID: "t1", Token: shortToken(t, sg, time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var got []uint64
	var bad error
	sub, err := sc.SubscribeFunc(ctx, "ns", "jobs", func(ev client.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if !ev.HasOffset && bad == nil {
			bad = errors.New("event of an in-memory stream without offset")
		}
		got = append(got, binary.BigEndian.Uint64(ev.Payload))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var sent uint64
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); sent++ {
		if err := pc.Publish(ctx, "ns", "jobs", seq(sent, 8)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if uint64(n) >= sent {
			break
		}
	}
	resets := tb.Server.Stats().TokenExpiries.Load()
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Error(bad)
	}
	if resets == 0 {
		t.Fatal("no token expired during the test: it checked nothing")
	}
	if uint64(len(got)) != sent {
		t.Errorf("sent %d events, the subscriber got %d across %d expiry resets", sent, len(got), resets)
	}
	for i, v := range got {
		if v != uint64(i) {
			t.Fatalf("event %d carries seq %d (gap or duplicate) across %d expiry resets", i, v, resets)
		}
	}
	if m := sub.Missed(); m != 0 {
		t.Errorf("Missed = %d, want 0", m)
	}
	if sub.Err() != nil {
		t.Errorf("subscription ended: %v", sub.Err())
	}
	t.Logf("sent %d, all delivered once in order across %d expiry resets", sent, resets)
}

// A durable stream with a coalescing delay: a subscription that replays
// from offset 0 while publishes go on joins live delivery with no gap and
// no duplicate.
func TestExplore2WriteMaxDelayDurableCatchUp(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{}, "default/default/d"),
		testbroker.WithBrokerOptions(broker.Options{QueuePolicy: broker.Block, QueueCapacity: 32, WriteMaxDelay: 20 * time.Millisecond}))
	c := dial(t, tb, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const before, during = 3000, 3000
	for i := range before / 10 {
		b := make([][]byte, 10)
		for k := range b {
			b[k] = seq(uint64(i*10+k), 8)
		}
		if err := c.PublishBatch(ctx, "default", "d", b); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		for i := before; i < before+during; i++ {
			if err := c.Publish(ctx, "default", "d", seq(uint64(i), 8), client.WithAck(wire.AckNone)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	sub, err := c.Subscribe(ctx, "default", "d", client.FromOffset(0))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range uint64(before + during) {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d: %v", i, err)
		}
		if !ev.HasOffset || ev.Offset != i || binary.BigEndian.Uint64(ev.Payload) != i {
			t.Fatalf("event %d: offset %d (has %v) seq %d", i, ev.Offset, ev.HasOffset, binary.BigEndian.Uint64(ev.Payload))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The drop reporter keys subscriptions by id. A subscription id used again
// (WithSubscriptionID, e.g. by an automatic resubscribe) by a subscription
// that has dropped fewer events than the previous holder of the id must
// not be reported with a wrapped-around dropped count.
func TestDropReportSurvivesIDReuse(t *testing.T) {
	logs := &syncbuf.Buffer{}
	tb := testbroker.Start(t, testbroker.WithStreams("default/default/d"),
		testbroker.WithBrokerOptions(broker.Options{QueueCapacity: 1}),
		testbroker.WithServerOptions(server.Options{DropReportInterval: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logs, nil))}))
	s, _ := tb.Broker.Stream("default", "default", "d")
	sub, err := s.Subscribe(broker.SubscribeOptions{ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := s.Publish(context.Background(), [][]byte{[]byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// The reporter has seen the first holder's final count (its drops may
	// be spread over several reports): it writes no line about it after.
	first := subStats(s, 7).Dropped
	waitLog(t, logs, 0, fmt.Sprintf("dropped_total=%d ", first))
	sub.Close()
	mark := len(logs.String()) // every line about id 7 from here is the new holder's
	sub2, err := s.Subscribe(broker.SubscribeOptions{ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	// The new holder of id 7 drops 2 of 3 events: its own reports say 2 in
	// all (one line, or two when a report falls between the drops).
	for range 3 {
		if _, err := s.Publish(context.Background(), [][]byte{[]byte("y")}); err != nil {
			t.Fatal(err)
		}
	}
	waitLog(t, logs, mark, "dropped_total=2 ")
	var reported uint64
	for _, l := range strings.Split(logs.String()[mark:], "\n") {
		if !strings.Contains(l, "subscription=7 ") {
			continue
		}
		var d uint64
		if i := strings.Index(l, " dropped="); i < 0 {
			t.Fatalf("drop report without a count: %s", l)
		} else if _, err := fmt.Sscanf(l[i:], " dropped=%d", &d); err != nil {
			t.Fatalf("drop report %q: %v", l, err)
		}
		reported += d
	}
	if reported != 2 {
		t.Fatalf("the new subscription's 2 drops reported as %d:\n%s", reported, logs.String()[mark:])
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "dropped=1844") {
			t.Fatalf("bogus drop report: %s", l)
		}
	}
}

// waitLog waits until logs, from byte from on, hold want.
func waitLog(t *testing.T, logs *syncbuf.Buffer, from int, want string) {
	t.Helper()
	for deadline := time.Now().Add(testwait.Liveness); !strings.Contains(logs.String()[from:], want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after %v:\n%s", want, testwait.Liveness, logs.String())
		}
	}
}
