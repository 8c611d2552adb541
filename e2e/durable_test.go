package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// A subscriber reads N events, disconnects, and reconnects at offset N
// while publishing continues: it sees every later event exactly once. After
// a restart of the broker every event is still there.
func TestDurableResumeExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	tb := testbroker.Start(t, testbroker.WithDurableStreams(dir, commitlog.Options{Sync: commitlog.SyncInterval}, "default/default/orders"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub := dial(t, tb, client.Options{})
	const total, firstRead = 3000, 500
	published := make(chan error, 1)
	go func() {
		for i := range uint64(total) {
			if err := pub.Publish(ctx, "default", "orders", seq(i, 32)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	sc := dial(t, tb, client.Options{})
	sub, err := sc.Subscribe(ctx, "default", "orders", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range uint64(firstRead) {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.HasOffset || ev.Offset != i || binary.BigEndian.Uint64(ev.Payload) != i {
			t.Fatalf("event %d: offset %d (has %v) payload %d", i, ev.Offset, ev.HasOffset, binary.BigEndian.Uint64(ev.Payload))
		}
		last = ev.Offset
	}
	sub.Close()
	sub, err = sc.Subscribe(ctx, "default", "orders", client.FromOffset(last+1))
	if err != nil {
		t.Fatal(err)
	}
	for want := last + 1; want < total; want++ {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %d: %v", want, err)
		}
		if ev.Offset != want || binary.BigEndian.Uint64(ev.Payload) != want {
			t.Fatalf("got offset %d payload %d, want %d", ev.Offset, binary.BigEndian.Uint64(ev.Payload), want)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// Nothing more: no duplicate arrives.
	idle, cancelIdle := context.WithTimeout(ctx, 200*time.Millisecond)
	if ev, err := sub.Next(idle); err == nil {
		t.Fatalf("unexpected extra event at offset %d", ev.Offset)
	}
	cancelIdle()
	sub.Close()
	pub.Close()
	sc.Close()

	tb.Restart()
	c := dial(t, tb, client.Options{})
	sub, err = c.Subscribe(ctx, "default", "orders", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	for want := range uint64(total) {
		ev, err := sub.Next(ctx)
		if err != nil || ev.Offset != want || binary.BigEndian.Uint64(ev.Payload) != want {
			t.Fatalf("after restart, event %d: %+v %v", want, ev, err)
		}
	}
	// Cursor errors come back as the reference's subscribe_cursor_error.
	var ce *client.CursorError
	if _, err := c.Subscribe(ctx, "default", "orders", client.FromOffset(total+10)); !errors.As(err, &ce) || ce.Reason != wire.CursorInFuture || ce.Available != total {
		t.Fatalf("in-future cursor: %v", err)
	}
}
