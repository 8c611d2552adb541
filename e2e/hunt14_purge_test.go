package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/wire"
)

// docs/semantics.md, "Purging a stream", across a crash: consumer groups
// deliver none of the purged records again (those they had not read, had
// in flight or had acked), offsets are not reused, and a crash leaves no
// damaged log. A durable stream (--fsync always) gets 50 records; group g
// takes 10 (5 acked, 2 nacked, one with a 2-minute delay, 3 held in
// flight); the stream is purged; 10 more are
// published; the broker is SIGKILLed and restarted. Then g delivers
// exactly the 10 new records, a new group and an earliest subscription
// start at the purge point, and the logs verify.
func TestHunt14PurgeAcrossKill(t *testing.T) {
	b := hunt14Start(t, "--durable-stream", "default/default/h14g:always")
	b.ready()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialProc(t, b.addr, b.dataDir)
	publish := func(from, to uint64) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := c.Publish(ctx, "default", "h14g", hunt7Payload(i), client.WithAck(wire.AckPerMessage)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 50)
	co, err := c.Consumer(ctx, "default", "h14g", "g", client.WithPrefetch(10))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i%2 == 0:
			if err := m.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		case i == 1 || i == 3:
			if err := m.Nack(ctx, time.Duration(i-1)*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := c.PurgeStream(ctx, "default", "h14g")
	if err != nil {
		t.Fatal(err)
	}
	if res.Purged != 50 || res.Offset != 50 {
		t.Fatalf("purge: %+v, want 50 purged, next offset 50", res)
	}
	publish(50, 60)
	c.Close() // first: a client closing waits for a live broker to read its streams
	b.stop(syscall.SIGKILL)
	b.start()
	c = dialProc(t, b.addr, b.dataDir)
	defer c.Close()

	for _, group := range []string{"g", "fresh"} {
		co := hunt14Join(t, ctx, c, "h14g", group, client.WithPrefetch(20))
		got := map[uint64]bool{}
		var quiet context.Context
		var qcancel context.CancelFunc = func() {}
		for {
			nctx := ctx
			if len(got) >= 10 { // then anything else within 500 ms
				quiet, qcancel = context.WithTimeout(ctx, 500*time.Millisecond)
				nctx = quiet
			}
			m, err := co.Next(nctx)
			qcancel()
			if err != nil {
				if len(got) < 10 {
					t.Errorf("group %s: %v", group, err)
				}
				break
			}
			id, ok := hunt7ID(m.Payload)
			if !ok || id != m.Offset {
				t.Errorf("group %s: offset %d holds id %d (ok %v)", group, m.Offset, id, ok)
			}
			if m.Offset < 50 {
				t.Errorf("group %s: purged offset %d delivered after the crash (attempt %d)", group, m.Offset, m.Attempt)
			}
			if got[m.Offset] {
				t.Errorf("group %s: offset %d delivered twice", group, m.Offset)
			}
			got[m.Offset] = true
			if err := m.Ack(ctx); err != nil {
				t.Errorf("group %s: ack %d: %v", group, m.Offset, err)
			}
		}
		for off := uint64(50); off < 60; off++ {
			if !got[off] {
				t.Errorf("group %s: offset %d, published after the purge, not delivered", group, off)
			}
		}
		co.Close()
		st, err := c.QueueStats(ctx, "default", "h14g", group)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lag != 0 || st.InFlight != 0 || st.Pending != 0 {
			t.Errorf("group %s after acking everything: %+v", group, st)
		}
	}
	sub, err := c.Subscribe(ctx, "default", "h14g", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for want := uint64(50); want < 60; want++ {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Offset != want {
			t.Fatalf("earliest subscription after the purge and crash: offset %d, want %d", ev.Offset, want)
		}
	}
	if err := c.Publish(ctx, "default", "h14g", hunt7Payload(60), client.WithAck(wire.AckPerMessage)); err != nil {
		t.Fatal(err)
	}
	if ev, err := sub.Next(ctx); err != nil || ev.Offset != 60 {
		t.Fatalf("publish after the crash: offset %d (%v), want 60 (offsets are not reused)", ev.Offset, err)
	}
}
