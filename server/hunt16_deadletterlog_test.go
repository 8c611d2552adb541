package server_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// Dead letters dropped for want of a dead-letter stream are each counted
// and logged per group: the first at once (dropped=1), then at most a line
// every 10 s with the number since the last one, so a group failing
// every record does not write a line each.
func TestHunt16DeadLetterDropsLogLimited(t *testing.T) {
	var logs syncbuf.Buffer
	tb := testbroker.Start(t,
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{Sync: commitlog.SyncNever}, "t1/default/jobs"),
		testbroker.WithServerOptions(server.Options{Queues: server.QueueOptions{TickInterval: 2 * time.Millisecond, MaxAttempts: 1},
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}))
	start := time.Now()
	st, err := tb.Broker.Stream("t1", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	for range n {
		if _, err := st.Publish(context.Background(), [][]byte{[]byte("a")}); err != nil {
			t.Fatal(err)
		}
	}
	w := dialRaw(t, tb).open()
	joinRaw(t, w, "w1")
	// The nack of a record's last attempt frees the member's prefetch
	// slot before its answer is written: the next delivery may come
	// first.
	var next []wire.QueueDelivery
	for i := range uint64(n) {
		if len(next) == 0 {
			next = append(next, nextDelivery(t, w))
		}
		d := next[0]
		next = next[1:]
		w.sendMsg(&wire.QueueNack{Offset: d.Offset, RequestID: wire.U64(i + 1)}) // its last attempt
		for {
			f, err := w.r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Flags == wire.FlagQueueDelivery {
				if next, err = wire.DecodeQueueDeliveries(f.Payload, next); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if m, err := wire.DecodeMessage(f.Payload); err != nil || !reflect.DeepEqual(m, &wire.QueueOK{RequestID: i + 1}) {
				t.Fatalf("answer to nack %d: %#v (%v), want queue_ok", i+1, m, err)
			}
			break
		}
	}
	waitFor(t, "the records dead-lettered", func() bool {
		s, _ := tb.Server.GroupStats("t1", "default", "jobs", "g")
		return s.DeadLettersDropped == n
	}, nil)
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "dead letter dropped") {
			lines = append(lines, l)
		}
	}
	// One line, and one more for each 10 s the test took.
	if most := 1 + int(time.Since(start)/(10*time.Second)); len(lines) == 0 || len(lines) > most || !strings.Contains(lines[0], "dropped=1") {
		t.Fatalf("%d lines for %d drops, want the first (dropped=1) and at most %d:\n%s", len(lines), n, most, logs.String())
	}
}
