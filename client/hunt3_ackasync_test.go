package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// startQueueTestBroker runs a broker with the durable stream
// default/default/jobs (no fsync) and fast queue ticks.
func startQueueTestBroker(tb testing.TB) *testbroker.Broker {
	tb.Helper()
	return startBroker(tb,
		testbroker.WithDurableStreams(tb.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "default/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 10 * time.Millisecond}}))
}

// publishJobs publishes n records (their index, big-endian) to jobs.
func publishJobs(tb testing.TB, ctx context.Context, c *Client, n int) {
	tb.Helper()
	const batch = 500
	for i := 0; i < n; i += batch {
		var ps [][]byte
		for j := i; j < min(i+batch, n); j++ {
			ps = append(ps, binary.BigEndian.AppendUint64(nil, uint64(j)))
		}
		if err := c.PublishBatch(ctx, "default", "jobs", ps); err != nil {
			tb.Fatal(err)
		}
	}
}

// takeAll joins group with a prefetch of n and takes n deliveries.
func takeAll(tb testing.TB, ctx context.Context, c *Client, group string, n int) (*Consumer, []*Message) {
	tb.Helper()
	co, err := c.Consumer(ctx, "default", "jobs", group, WithPrefetch(n))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = co.Close() })
	msgs := make([]*Message, n)
	for i := range msgs {
		if msgs[i], err = co.Next(ctx); err != nil {
			tb.Fatalf("delivery %d of %d: %v", i, n, err)
		}
	}
	return co, msgs
}

// waitAcked waits until the broker has recorded n acks of group.
func waitAcked(tb testing.TB, ctx context.Context, c *Client, group string, n uint64) {
	tb.Helper()
	for {
		st, err := c.QueueStats(ctx, "default", "jobs", group)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Acked >= n {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("acked %d of %d: %v", st.Acked, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestAckAsyncAllocs reports the allocations of one AckAsync on a stream
// with flow-control room (the process's allocations, broker included: the
// broker runs in this process), and checks every ack reached the broker.
// With the non-blocking write first, no context, timer or AfterFunc is
// made per ack.
func TestAckAsyncAllocs(t *testing.T) {
	const n = 400
	b := startQueueTestBroker(t)
	c := dial(t, b, Options{})
	ctx := testCtx(t)
	publishJobs(t, ctx, c, n+1)
	_, msgs := takeAll(t, ctx, c, "allocs", n+1)
	i := 0
	avg := testing.AllocsPerRun(n, func() {
		if err := msgs[i].AckAsync(); err != nil {
			t.Fatal(err)
		}
		i++
	})
	t.Logf("allocations per AckAsync (whole process): %.1f", avg)
	waitAcked(t, ctx, c, "allocs", n+1)
}

// BenchmarkAckAsync measures AckAsync alone: the deliveries are taken
// before the timer starts.
func BenchmarkAckAsync(b *testing.B) {
	tb := startQueueTestBroker(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Dial(ctx, tb.Addr, Options{TLS: tb.ClientTLS})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	publishJobs(b, ctx, c, b.N)
	group := fmt.Sprintf("bench-%d", b.N)
	_, msgs := takeAll(b, ctx, c, group, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for _, m := range msgs {
		if err := m.AckAsync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	waitAcked(b, ctx, c, group, uint64(b.N))
}

// startGatedQueueBroker answers auth and queue_join, then reads nothing
// more on the queue stream until gate is closed, with a 64 KiB stream
// window (gatedWindow): a client's acks fill it and then wait for credit.
// Once open, it decodes every frame of the queue stream and sends the
// offsets of each queue_ack on acks. At a queue_leave it finishes the
// stream. How the stream ended goes to ended, when it is not nil:
// "leave", "reset" (the client reset its side) or "garbage: ..." (a frame
// that is not a whole, valid queue message); when ended is nil, anything
// but a leave fails the test.
func startGatedQueueBroker(t *testing.T, gate <-chan struct{}, acks chan<- []uint64, ended chan<- string) string {
	t.Helper()
	authOK := authOKFrame(t)
	end := func(how string) {
		if ended != nil {
			ended <- how
		} else if how != "leave" {
			t.Errorf("fake broker: queue stream: %s", how)
		}
	}
	return startFakeBroker(t, transport.Options{
		InitialStreamReceiveWindow: gatedWindow, MaxStreamReceiveWindow: gatedWindow,
	}, func(ctx context.Context, _ *quic.Conn, str *quic.Stream) {
		r := wire.NewReader(str, 1<<20)
		if _, err := r.ReadFrame(); err != nil {
			return
		}
		if _, err := str.Write(authOK); err != nil {
			return
		}
		f, err := r.ReadFrame()
		if err != nil {
			return // a publish stream: the client closes it
		}
		m, err := wire.DecodeMessage(f.Payload)
		join, ok := m.(*wire.QueueJoin)
		if err != nil || !ok {
			t.Errorf("fake broker: got %v (%v), want queue_join", m, err)
			return
		}
		joined, _ := wire.AppendMessageFrame(nil, &wire.QueueJoined{Group: join.Group, Consumer: "c", Prefetch: 1})
		if _, err := str.Write(joined); err != nil {
			return
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return
		}
		for {
			f, err := r.ReadFrame()
			if se := (*quic.StreamError)(nil); errors.As(err, &se) {
				end("reset")
				return
			} else if err != nil {
				end("garbage: " + err.Error())
				return
			}
			switch m, err := wire.DecodeMessage(f.Payload); m := m.(type) {
			case *wire.QueueAck:
				acks <- m.Offsets
			case *wire.QueueLeave:
				end("leave")
				_ = str.Close()
				return
			default:
				end(fmt.Sprintf("garbage: %q (%v)", f.Payload, err))
				return
			}
		}
	})
}

// gatedWindow is the queue stream's receive window at the gated broker.
const gatedWindow = 64 << 10

// dialGatedConsumer joins the group of the gated broker at addr,
// with one connection of each kind.
func dialGatedConsumer(t *testing.T, addr string, opts Options) *Consumer {
	t.Helper()
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS, opts.PublishConns, opts.PublishStreamsPerConn, opts.EventConns = tlsConf, 1, 1, 1
	ctx := testCtx(t)
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	co, err := c.Consumer(ctx, "default", "jobs", "g")
	if err != nil {
		t.Fatal(err)
	}
	return co
}

// Concurrent AckAsync calls fill the stream's flow-control window, so
// that later ones take the blocking write; every ack still arrives once,
// whole, and in each caller's order: a non-blocking write never overtakes
// a frame another caller is still writing.
func TestAckAsyncOrderAcrossBlockingWrites(t *testing.T) {
	gate := make(chan struct{})
	const callers, perCaller = 4, 2000
	acks := make(chan []uint64, callers*perCaller)
	co := dialGatedConsumer(t, startGatedQueueBroker(t, gate, acks, nil), Options{})
	ctx := testCtx(t)
	// Offsets of six digits: every ack frame has the same size, so a
	// count of acks written proves the window was exceeded.
	const base = 100_000
	frame, err := wire.AppendMessageFrame(nil, &wire.QueueAck{Offsets: []uint64{base}})
	if err != nil {
		t.Fatal(err)
	}
	beyondWindow := int64(gatedWindow/len(frame) + 1)
	var written atomic.Int64
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for i := range perCaller {
				m := &Message{Offset: uint64(base + g*perCaller + i), co: co}
				if err := m.AckAsync(); err != nil {
					t.Errorf("caller %d, ack %d: %v", g, i, err)
					return
				}
				written.Add(1)
			}
		})
	}
	// TryWrite queues nothing beyond the window: once more acks than fit
	// in it were written, some took the blocking write.
	for written.Load() < beyondWindow {
		runtime.Gosched()
		if ctx.Err() != nil {
			t.Fatalf("%d acks written, want %d: %v", written.Load(), beyondWindow, ctx.Err())
		}
	}
	close(gate)
	wg.Wait()
	next := make([]uint64, callers)
	for g := range next {
		next[g] = uint64(base + g*perCaller)
	}
	for range callers * perCaller {
		var offs []uint64
		select {
		case offs = <-acks:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if len(offs) != 1 {
			t.Fatalf("queue_ack with offsets %v, want one", offs)
		}
		g := (offs[0] - base) / perCaller
		if offs[0] != next[g] {
			t.Fatalf("caller %d: ack of %d arrived when %d was next", g, offs[0], next[g])
		}
		next[g]++
	}
	if err := co.Close(); err != nil {
		t.Fatal(err)
	}
}
