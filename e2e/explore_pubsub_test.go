package e2e

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
)

// A subscription to a durable stream that starts at an offset (or at the
// earliest) and has received nothing yet when the broker restarts must
// resume at that start, not at the tail: events appended while it was
// away are still retained and must be delivered. (Here the broker is
// stopped, records are appended to its log, and it starts again.)
func TestExploreResubscribeKeepsStartBeforeFirstEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func(tail uint64) client.SubscribeOption
	}{
		{"offset", func(tail uint64) client.SubscribeOption { return client.FromOffset(tail) }},
		{"earliest", func(uint64) client.SubscribeOption { return client.FromEarliest() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logOpts := commitlog.Options{Sync: commitlog.SyncInterval}
			tb := testbroker.Start(t, testbroker.WithDurableStreams(dir, logOpts, "default/default/resume"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := dial(t, tb, client.Options{})
			sub, err := c.Subscribe(ctx, "default", "resume", tc.opt(0))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			stream, _ := tb.Broker.Stream("default", "default", "resume")
			waitSubscriptions(t, stream, 1)

			// The broker goes away; while it is down, three records land in
			// its log (as if published just before the subscriber got back).
			tb.Stop()
			lg, err := commitlog.Open(filepath.Join(dir, "default", "default", "resume"), logOpts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lg.Append(ctx, [][]byte{seq(0, 8), seq(1, 8), seq(2, 8)}); err != nil {
				t.Fatal(err)
			}
			if err := lg.Close(); err != nil {
				t.Fatal(err)
			}
			tb.Restart()
			stream, _ = tb.Broker.Stream("default", "default", "resume")
			waitSubscriptions(t, stream, 1) // resubscribed
			pub := dial(t, tb, client.Options{})
			if err := pub.Publish(ctx, "default", "resume", seq(3, 8)); err != nil {
				t.Fatal(err)
			}

			for want := range uint64(4) {
				ev, err := sub.Next(ctx)
				if err != nil {
					t.Fatalf("event %d after the restart: %v", want, err)
				}
				if !ev.HasOffset || ev.Offset != want || binary.BigEndian.Uint64(ev.Payload) != want {
					t.Fatalf("got offset %d (has %v) payload %d, want %d: the resubscription skipped retained events",
						ev.Offset, ev.HasOffset, binary.BigEndian.Uint64(ev.Payload), want)
				}
			}
		})
	}
}
