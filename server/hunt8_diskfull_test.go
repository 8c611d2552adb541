package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/fulldisk"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/wire"
)

// A fire-and-forget publish refused by a full disk on a publish-only (uni)
// stream is dropped (and counted by the log) and the stream goes on: the
// next publish on it is stored and delivered (before: the broker stopped
// reading the stream, losing every later publish on it).
func TestUniStreamGoesOnAfterDiskFullPublish(t *testing.T) {
	tb := testbroker.Start(t)
	lg := fulldisk.New(commitlog.NewMemory(0, 0))
	lg.Refuse.Store(1)
	st, err := tb.Broker.DeclareLoggedStream("t1", "default", "d", broker.StreamOptions{Log: lg, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := st.Subscribe(broker.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us := dialRaw(t, tb).openUni(ctx)
	b, _ := wire.AppendMessageFrame(nil, &wire.Auth{TenantID: "t1", Token: "dev"})
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "d", [][]byte{[]byte("refused: disk full")})
	b, _ = wire.AppendPublishBatchFrame(b, "t1", "default", "d", [][]byte{[]byte("stored: disk has room")})
	if _, err := us.Write(b); err != nil {
		t.Fatal(err)
	}
	us.Close()
	frame, events, err := sub.NextBatch(ctx, nil)
	if err != nil {
		t.Fatalf("the publish after the refused one was not served: %v", err)
	}
	if events != 1 || !bytes.Contains(frame, []byte("stored: disk has room")) || bytes.Contains(frame, []byte("refused")) {
		t.Fatalf("delivered %d events %q, want only the second publish", events, frame)
	}
	if lg.Next() != 1 {
		t.Fatalf("log holds %d records, want 1", lg.Next())
	}
}
