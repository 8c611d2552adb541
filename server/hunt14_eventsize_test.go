package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// A publish frame within the frame limit can hold an event that, framed
// for its subscribers (24 bytes of event batch framing), exceeds it: no
// subscriber or consumer reading with the limit could take it, and a
// queue would redeliver it forever. The broker refuses such an event at
// publish: a fire-and-forget publish is dropped and counted
// (EventTooLargeDrop), an acked one answered; an event of exactly the
// limit less the framing is delivered, in a frame within the limit.
func TestHunt14EventTooLargeForSubscribersRefused(t *testing.T) {
	const maxFrame = 64 << 10
	tb := testbroker.Start(t, testbroker.WithStreams("t/n/s"),
		testbroker.WithServerOptions(server.Options{MaxFrameBytes: maxFrame}))
	st, err := tb.Broker.Stream("t", "n", "s")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := st.Subscribe(broker.SubscribeOptions{WantOffsets: true})
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := wire.AppendPublishBatchFrame(nil, "t", "n", "s", [][]byte{nil})
	if overhead := len(empty) - wire.HeaderSize; overhead+maxFrame-24+1 > maxFrame {
		t.Fatalf("publish framing %d bytes: the refused event would not fit a publish frame", overhead)
	}
	limit := maxFrame - 24
	s := dialRaw(t, tb).open()
	s.auth("t", wire.U16(wire.KnownFlags))
	var b []byte
	for _, size := range []int{limit + 1, limit, 4} {
		b, _ = wire.AppendPublishBatchFrame(b, "t", "n", "s", [][]byte{make([]byte, size)})
	}
	s.send(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sizes []int
	for len(sizes) < 2 {
		frame, _, err := sub.NextBatch(ctx, nil)
		if err != nil {
			t.Fatalf("after events of %v bytes: %v", sizes, err)
		}
		if len(frame)-wire.HeaderSize > maxFrame {
			t.Fatalf("event frame of %d bytes, over the limit %d", len(frame)-wire.HeaderSize, maxFrame)
		}
		f, err := wire.NewReader(bytes.NewReader(frame), maxFrame).ReadFrame()
		if err != nil {
			t.Fatalf("a subscriber reading with the limit: %v", err)
		}
		var eb wire.BinaryEventBatch
		if err := wire.DecodeEventBatch(f.Flags, f.Payload, &eb); err != nil {
			t.Fatal(err)
		}
		for _, p := range eb.Payloads {
			sizes = append(sizes, len(p))
		}
	}
	if sizes[0] != limit || sizes[1] != 4 {
		t.Fatalf("delivered events of %v bytes, want [%d 4]", sizes, limit)
	}
	if n := tb.Server.Stats().EventTooLargeDrop.Load(); n != 1 {
		t.Fatalf("EventTooLargeDrop %d, want 1", n)
	}
}
