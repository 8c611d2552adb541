package server_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// A drain under load: acked publishes pipelined on one connection while
// Shutdown starts. Every publish acked ok reaches the subscriber, whose
// event stream is finished cleanly (FIN, not a reset) after its queued
// events; new streams and connections are refused; Shutdown returns nil.
func TestDrainDeliversEveryAckedPublish(t *testing.T) {
	tb := startTB(t)
	c := dialRaw(t, tb)
	m, ok := c.subscribeRaw(t, "demo", nil).(*wire.Subscribed)
	if !ok {
		t.Fatalf("subscribe: %#v", m)
	}
	ev := &eventStreams{t: t, c: c, by: map[uint64]*quic.ReceiveStream{}}
	us := ev.get(m.SubscriptionID)

	type events struct {
		got map[string]bool
		err error
	}
	delivered := make(chan events, 1)
	go func() {
		r := wire.NewReader(us, 0)
		got := map[string]bool{}
		var b wire.BinaryEventBatch
		for {
			f, err := r.ReadFrame()
			if err != nil {
				delivered <- events{got, err}
				return
			}
			if err := wire.DecodeEventBatch(f.Flags, f.Payload, &b); err != nil {
				delivered <- events{got, err}
				return
			}
			for _, p := range b.Payloads {
				got[string(p)] = true
			}
		}
	}()

	pub := dialRaw(t, tb).open()
	pub.auth("t1", nil)
	go func() { // pipelined, not waiting for acks, until the broker stops
		for i := uint64(1); ; i++ {
			f, _ := wire.AppendAckedPublishBatchFrame(nil, i, wire.AckPerBatch, "t1", "default", "demo", [][]byte{[]byte(strconv.FormatUint(i, 10))})
			if _, err := pub.s.Write(f); err != nil {
				return
			}
		}
	}()
	var acked []uint64
	refused := 0
	shutdown := make(chan error, 1)
	for {
		f, err := pub.r.ReadFrame()
		if err != nil {
			break
		}
		a, err := wire.DecodePublishAck(f.Payload)
		if err != nil {
			t.Fatalf("ack: %v", err)
		}
		if a.OK {
			acked = append(acked, a.RequestID)
		} else {
			refused++
		}
		if len(acked) == 200 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				shutdown <- tb.Server.Shutdown(ctx)
			}()
		}
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	res := <-delivered
	if res.err != io.EOF {
		t.Errorf("event stream ended with %v, want a clean end after its queued events", res.err)
	}
	for _, id := range acked {
		if !res.got[strconv.FormatUint(id, 10)] {
			t.Fatalf("publish %d acked ok but never delivered (%d acked, %d delivered)", id, len(acked), len(res.got))
		}
	}
	t.Logf("%d acked, %d delivered, %d refused", len(acked), len(res.got), refused)
}
